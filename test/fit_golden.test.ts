// Fits against SciPy (fixtures/fit/*.json, made by scripts/make_fit_goldens.py with
// scipy.optimize.minimize L-BFGS-B on the same Huber objective): our objective agrees with
// SciPy's at SciPy's optimum, our fit is at least as good, and it lands on the same parameters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { getLaw, makeObjective, fitLaw, predictLoss, type Point } from '../src/index.js';

interface Golden {
  law: string;
  huber_delta: number;
  noise_sigma: number;
  truth: Record<string, number>;
  points: Point[];
  scipy: { internal: Record<string, number>; params: Record<string, number>; objective: number; starts: number };
}

const DIR = join(process.cwd(), 'fixtures', 'fit');
const goldens = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();

test('the goldens are there', () => {
  for (const name of ['chinchilla_noisy.json', 'chinchilla_clean.json', 'abnar_noisy.json', 'power_noisy.json']) assert.ok(goldens.includes(name), name);
});

for (const file of goldens) {
  const g = JSON.parse(readFileSync(join(DIR, file), 'utf8')) as Golden;
  const law = getLaw(g.law);
  const xs = Float64Array.from(law.internal.map((n) => g.scipy.internal[n]));
  const f = makeObjective(law, g.points, g.huber_delta);

  test(`${file}: our objective at SciPy's optimum equals SciPy's value`, () => {
    const ours = f(xs).value;
    // Absolute slack for the noiseless fixture, where residuals are ~1e-13 and their squares meet round-off.
    assert.ok(Math.abs(ours - g.scipy.objective) <= 1e-9 * g.scipy.objective + 1e-24, `ours ${ours} vs scipy ${g.scipy.objective}`);
  });

  test(`${file}: our fit reaches SciPy's objective (or lower) at the same parameters`, () => {
    const fit = fitLaw(law, g.points, { huberDelta: g.huber_delta });
    assert.ok(fit.objective <= g.scipy.objective * (1 + 1e-7) + 1e-28, `ours ${fit.objective} vs scipy ${g.scipy.objective} (${g.scipy.starts} starts)`);
    // Same fitted curve: predictions agree at every point.
    for (const p of g.points) {
      const a = predictLoss(law, fit.x, p), b = predictLoss(law, xs, p);
      assert.ok(Math.abs(a - b) / b < 1e-5, `prediction at N=${p.params} D=${p.tokens}: ${a} vs ${b}`);
    }
    // Same parameters, where the data identify them (the 10-parameter Abnar law is looser).
    const tol = g.law === 'abnar' ? 0.05 : 1e-3;
    for (const [k, v] of Object.entries(g.scipy.params)) {
      assert.ok(Math.abs(fit.params[k] - v) <= tol * Math.abs(v) + 1e-9, `${k}: ours ${fit.params[k]} vs scipy ${v}`);
    }
    if (g.noise_sigma === 0) {
      for (const [k, v] of Object.entries(g.truth)) assert.ok(Math.abs(fit.params[k] - v) / v < 1e-6, `recovery of ${k}: ${fit.params[k]} vs ${v}`);
    }
  });
}
