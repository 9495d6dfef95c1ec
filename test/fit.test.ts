// Scaling-law fits: analytic gradients against finite differences, recovery of known parameters,
// the compute-optimal allocation (closed form vs numerical), optimal sparsity, bootstrap and
// extrapolation, and the readers' errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  getLaw, makeObjective, fitLaw, fitReport, internalFromParams, lawParams, huber,
  chinchillaOptimal, chinchillaLoss, abnarLoss, abnarOptimalSparsity, abnarSparsityForParams,
  parsePointsCsv, pointsFromSweepResults, computeOf, isoFlopData, lawFromJson, poorlyIdentified, fitMarkdown, type Point,
} from '../src/index.js';
import { rng } from './util.js';

const CHIN = { E: 1.8172, A: 482.01, B: 2085.43, alpha: 0.3478, beta: 0.3658 };
const ABNAR = { a: 30, b: 1000, c: 0.2, d: 200, e: 1.6, alpha: 0.3, beta: 0.35, lambda: 0.3, delta: 0.4, gamma: 0.3 };

function chinchillaPoints(noise = 0, seed = 1): Point[] {
  const r = rng(seed), out: Point[] = [];
  for (const N of [1e6, 3e6, 1e7, 3e7, 1e8]) for (const D of [1e7, 1e8, 1e9, 1e10]) {
    out.push({ params: N, tokens: D, sparsity: 0, loss: chinchillaLoss(CHIN, N, D) * Math.exp(noise * (r() - 0.5)) });
  }
  return out;
}

function abnarPoints(): Point[] {
  const out: Point[] = [];
  for (const N of [1e6, 1e7, 1e8]) for (const D of [1e8, 1e9, 1e10]) for (const S of [0, 0.5, 0.75, 0.9]) {
    out.push({ params: N, tokens: D, sparsity: S, loss: abnarLoss(ABNAR, N, D, S) });
  }
  return out;
}

test('Huber: quadratic inside delta, linear outside, continuous at the joint', () => {
  assert.equal(huber(0.5e-3, 1e-3), 0.125e-6);
  assert.equal(huber(-3e-3, 1e-3), 1e-3 * (3e-3 - 0.5e-3));
  assert.ok(Math.abs(huber(1e-3 + 1e-12, 1e-3) - huber(1e-3, 1e-3)) < 1e-14);
});

for (const name of ['chinchilla', 'abnar', 'power']) {
  test(`${name}: the analytic gradient of the Huber objective matches central finite differences`, () => {
    const law = getLaw(name);
    // Noisy points, so some residuals sit in the quadratic and some in the linear part of the Huber loss.
    const r = rng(7);
    const pts = abnarPoints().map((p) => ({ ...p, loss: p.loss * Math.exp(0.01 * (r() - 0.5)) }));
    // delta between the residual sizes exercises both branches
    const f = makeObjective(law, pts, 3e-3);
    const x = Float64Array.from(law.grid.map((g, j) => g[Math.floor(g.length / 2)] + 0.1 * (j % 3)));
    const { grad } = f(x);
    for (let j = 0; j < x.length; j++) {
      const h = 1e-6, xp = Float64Array.from(x), xm = Float64Array.from(x);
      xp[j] += h; xm[j] -= h;
      const fd = (f(xp).value - f(xm).value) / (2 * h);
      assert.ok(Math.abs(fd - grad[j]) <= 1e-6 * Math.max(1, Math.abs(fd)), `${name} d/d${law.internal[j]}: analytic ${grad[j]} vs fd ${fd}`);
    }
  });
}

test('chinchilla recovers its parameters from noiseless points', () => {
  const fit = fitLaw(getLaw('chinchilla'), chinchillaPoints());
  assert.ok(fit.converged, fit.reason);
  for (const [k, v] of Object.entries(CHIN)) assert.ok(Math.abs(fit.params[k] - v) / v < 1e-6, `${k}: ${fit.params[k]} vs ${v}`);
});

test('abnar recovers its parameters from noiseless points at four sparsity levels', () => {
  const fit = fitLaw(getLaw('abnar'), abnarPoints(), { starts: 4 });
  for (const [k, v] of Object.entries(ABNAR)) assert.ok(Math.abs(fit.params[k] - v) / v < 1e-3, `${k}: ${fit.params[k]} vs ${v}`);
});

test('power recovers E + A/C^alpha from noiseless points given by flops', () => {
  const law = getLaw('power');
  const truth = { E: 2, A: 150, alpha: 0.12 };
  const pts = [15, 16, 17, 18, 19, 20].map((e) => ({ params: 1, tokens: 1, sparsity: 0, flops: 10 ** e, loss: truth.E + truth.A / 10 ** (e * truth.alpha) }));
  const fit = fitLaw(law, pts);
  for (const [k, v] of Object.entries(truth)) assert.ok(Math.abs(fit.params[k] - v) / v < 1e-6, `${k}: ${fit.params[k]}`);
});

test('parameters convert between formula names and the internal vector', () => {
  const law = getLaw('chinchilla');
  const x = internalFromParams(law, CHIN);
  assert.deepEqual(Object.keys(lawParams(law, x)).sort(), Object.keys(CHIN).sort());
  for (const [k, v] of Object.entries(lawParams(law, x))) assert.ok(Math.abs(v - CHIN[k as keyof typeof CHIN]) < 1e-12);
  assert.throws(() => internalFromParams(law, { ...CHIN, A: -1 }), /A must be positive/);
  assert.throws(() => internalFromParams(law, { E: 1 }), /A missing/);
});

test('fits refuse data that cannot identify the law, and bad options', () => {
  assert.throws(() => fitLaw(getLaw('abnar'), chinchillaPoints()), /two or more sparsity levels/);
  assert.throws(() => fitLaw(getLaw('chinchilla'), chinchillaPoints().slice(0, 5)), /needs at least 6 points/);
  assert.throws(() => fitLaw(getLaw('chinchilla'), chinchillaPoints(), { huberDelta: 0 }), /Huber delta must be a positive/);
  assert.throws(() => getLaw('kaplan'), /unknown law 'kaplan': choose one of chinchilla, abnar, power/);
});

test('Chinchilla allocation: the closed form is the numerical minimum on C = 6ND', () => {
  for (const C of [1e15, 1e18, 1e21]) {
    const a = chinchillaOptimal(CHIN, C);
    assert.ok(Math.abs(6 * a.params * a.tokens - C) / C < 1e-12);
    // Scan log N finely, D = C / 6N; the closed form must not be beaten and must sit at the scan's minimum.
    let bestN = 0, bestL = Infinity;
    for (let i = 0; i <= 20000; i++) {
      const N = Math.exp(Math.log(1e3) + (i / 20000) * Math.log(C / 6 / 1e3 / 1e3));
      const L = chinchillaLoss(CHIN, N, C / 6 / N);
      if (L < bestL) { bestL = L; bestN = N; }
    }
    assert.ok(a.loss <= bestL + 1e-12, `closed form ${a.loss} vs scan ${bestL}`);
    assert.ok(Math.abs(Math.log(bestN / a.params)) < 2e-3, `N* ${a.params} vs scan ${bestN}`);
  }
  // Hoffmann et al.'s exponents: N* grows as C^(beta/(alpha+beta)).
  const r = chinchillaOptimal(CHIN, 1e22).params / chinchillaOptimal(CHIN, 1e20).params;
  assert.ok(Math.abs(Math.log(r) / Math.log(100) - CHIN.beta / (CHIN.alpha + CHIN.beta)) < 1e-12);
  assert.throws(() => chinchillaOptimal({ ...CHIN, alpha: -0.1 }, 1e18), /alpha > 0/);
});

test('Abnar optimal sparsity: S*(N; C) and S*(C) are minima of the law on C = 6 N (1-S) D', () => {
  const C = 1e18, N = 1e8;
  const o = abnarSparsityForParams(ABNAR, C, N);
  assert.ok(Math.abs(6 * N * (1 - o.sparsity) * o.tokens - C) / C < 1e-12);
  for (let S = 0; S < 0.999; S += 0.001) {
    assert.ok(abnarLoss(ABNAR, N, C / (6 * N * (1 - S)), S) >= o.loss - 1e-12, `S=${S} beats S*=${o.sparsity}`);
  }
  const g = abnarOptimalSparsity(ABNAR, C);
  assert.ok(g.loss <= o.loss + 1e-12, 'freeing N cannot do worse than fixing it');
  assert.ok(Math.abs(6 * g.activeParams * g.tokens - C) / C < 1e-9);
  // A dense share f makes N_active = N (f + (1-f)(1-S)).
  const f = abnarSparsityForParams(ABNAR, C, N, { denseFraction: 0.3 });
  assert.ok(Math.abs(f.activeParams - N * (0.3 + 0.7 * (1 - f.sparsity))) < 1e-6 * N);
  assert.throws(() => abnarOptimalSparsity(ABNAR, C, { denseFraction: 1 }), /dense fraction/);
});

test('fitReport: seeded bootstrap intervals bracket the fit, R^2 near 1, extrapolation to the largest compute', () => {
  const pts = chinchillaPoints(0.01, 3);
  const law = getLaw('chinchilla');
  const a = fitReport(law, pts, { bootstrap: 6, seed: 5, starts: 3 });
  const b = fitReport(law, pts, { bootstrap: 6, seed: 5, starts: 3 });
  assert.deepEqual(a.params, b.params, 'same seed, same intervals');
  // Percentile intervals need not contain the estimate exactly, but must lie around it.
  for (const p of a.params) assert.ok(p.value >= p.lo - (p.hi - p.lo) && p.value <= p.hi + (p.hi - p.lo), `${p.name} ${p.value} vs [${p.lo}, ${p.hi}]`);
  assert.ok(a.params.every((p) => p.lo < p.hi), 'noisy data gives intervals of positive width');
  assert.ok(a.r2 > 0.999 && a.r2 <= 1, `R^2 ${a.r2}`);
  assert.equal(a.residuals.length, pts.length);
  const x = a.extrapolation;
  assert.ok(!('skipped' in x));
  if (!('skipped' in x)) {
    assert.equal(x.heldOut, 1);
    assert.equal(x.points[0].compute, Math.max(...pts.map(computeOf)));
    assert.ok(x.meanAbsRelError < 0.02, `extrapolation error ${x.meanAbsRelError}`);
  }
  const c = fitReport(law, pts, { bootstrap: 6, seed: 6, starts: 3 });
  assert.notDeepEqual(a.params.map((p) => p.lo), c.params.map((p) => p.lo), 'another seed, other resamples');
});

test('poorly identified parameters: a positive interval over a factor 10, or one across 0 wider than 1', () => {
  const params = [
    { name: 'A', value: 400, lo: 300, hi: 600 }, // factor 2: identified
    { name: 'B', value: 1600, lo: 150, hi: 6800 }, // factor 45
    { name: 'alpha', value: 0.3, lo: 0.2, hi: 0.4 },
    { name: 'beta', value: -0.07, lo: -0.14, hi: 4.6 }, // across 0, width 4.7
    { name: 'gamma', value: 0.05, lo: -0.1, hi: 0.3 }, // across 0 but narrow
    { name: 'E', value: 1.7, lo: NaN, hi: NaN }, // no bootstrap
  ];
  assert.deepEqual(poorlyIdentified({ params }), ['B', 'beta']);
  // the report says so next to the table; a well-determined fit does not
  const pts = chinchillaPoints(0.001, 3);
  const good = fitReport(getLaw('chinchilla'), pts, { bootstrap: 6, seed: 5, starts: 3 });
  assert.deepEqual(poorlyIdentified(good), []);
  assert.doesNotMatch(fitMarkdown(good), /Poorly identified/);
  assert.match(fitMarkdown({ ...good, params }), /Poorly identified by these points \(95% interval wider than a factor 10, or across 0 and wider than 1\): B, beta\./);
});

test('CSV points: columns by name, defaults, and errors that name the line and column', () => {
  const pts = parsePointsCsv('\uFEFF# comment\r\nloss,tokens,params,family\r\n3.5,1e9,1e6,dense\n\n3.1,2e9,1e7,dense\n', 'p.csv');
  assert.equal(parsePointsCsv('\uFEFFparams,tokens,loss\n1e6,1e9,3\n', 'bom.csv')[0].params, 1e6, 'a byte-order mark is ignored');
  assert.deepEqual(pts[0], { params: 1e6, tokens: 1e9, loss: 3.5, sparsity: 0, family: 'dense' });
  const moe = parsePointsCsv('params,tokens,sparsity,loss,active_params,flops\n8e6,1e9,0.75,3.2,2e6,1.3e16\n', 'm.csv');
  assert.deepEqual(moe[0], { params: 8e6, tokens: 1e9, sparsity: 0.75, loss: 3.2, activeParams: 2e6, flops: 1.3e16 });
  assert.equal(computeOf({ params: 8e6, tokens: 1e9, sparsity: 0.75, loss: 1 }), 6 * 2e6 * 1e9);
  assert.throws(() => parsePointsCsv('params,tokens\n1,2\n', 'x.csv'), /x\.csv line 1: missing column 'loss'/);
  assert.throws(() => parsePointsCsv('params,tokens,loss\n1e6,1e9,abc\n', 'x.csv'), /x\.csv line 2, column 'loss': 'abc' is not a number/);
  assert.throws(() => parsePointsCsv('params,tokens,loss\n1e6,1e9\n', 'x.csv'), /x\.csv line 2: 2 fields, but the header has 3/);
  assert.throws(() => parsePointsCsv('params,tokens,loss,sparsity\n1e6,1e9,3,1\n', 'x.csv'), /x\.csv line 2: sparsity must be in \[0, 1\)/);
  assert.throws(() => parsePointsCsv('params,tokens,loss\n-5,1e9,3\n', 'x.csv'), /line 2: params must be a positive number/);
  assert.throws(() => parsePointsCsv('params,tokens,loss\n1e6,,3\n', 'x.csv'), /line 2, column 'tokens': empty/);
  assert.throws(() => parsePointsCsv('params,tokens,loss\n', 'x.csv'), /no data lines/);
  assert.throws(() => parsePointsCsv('params,tokens,loss,active_params\n1e6,1e9,3,2e6\n', 'x.csv'), /active_params must be positive and at most params/);
});

test('sweep results: both field spellings, failed points skipped', () => {
  const { points, skipped } = pointsFromSweepResults([
    { params_total: 8e6, params_active: 2e6, tokens: 1e9, sparsity: 0.75, flops: 1.2e16, val_loss: 3.2, family: 'moe-8x2' },
    { params: 1e6, tokens: 1e9, loss: 3.6, family: 'dense' },
    { params: 1e6, tokens: 1e9, val_loss: null, status: 'failed' },
  ]);
  assert.equal(skipped, 1);
  assert.deepEqual(points, [
    { params: 8e6, activeParams: 2e6, tokens: 1e9, sparsity: 0.75, flops: 1.2e16, loss: 3.2, family: 'moe-8x2' },
    { params: 1e6, tokens: 1e9, sparsity: 0, loss: 3.6, family: 'dense' },
  ]);
  assert.throws(() => pointsFromSweepResults({}), /expected a JSON array/);
  assert.throws(() => pointsFromSweepResults([{ params: 1e6, tokens: 1e9, loss: 3, sparsity: 2 }]), /entry 0: sparsity/);
});

test('isoFLOP groups: runs sharing a budget form curves whose fitted minima are the closed-form N*(C)', () => {
  const pts: Point[] = [];
  for (const C of [1e15, 1e16, 1e17]) for (const N of [3e5, 1e6, 3e6, 1e7, 3e7]) {
    // within 0.5% of the budget, as rounded step counts give
    const Cr = C * (1 + 0.005 * Math.sin(N));
    pts.push({ params: N, tokens: Cr / (6 * N), sparsity: 0, loss: chinchillaLoss(CHIN, N, Cr / (6 * N)) });
  }
  pts.push({ params: 1e6, tokens: 1e12, sparsity: 0, loss: chinchillaLoss(CHIN, 1e6, 1e12) }); // a lone run: no curve
  const report = fitReport(getLaw('chinchilla'), pts, { bootstrap: 0, starts: 3 });
  const iso = isoFlopData(report, pts)!;
  assert.equal(iso.rows.length, 15);
  assert.equal(new Set(iso.rows.map((r) => r.budget)).size, 3);
  assert.equal(iso.minima.length, 3);
  for (const m of iso.minima) {
    const a = chinchillaOptimal(CHIN, m.budget);
    assert.ok(Math.abs(m.params / a.params - 1) < 1e-4, `N* ${m.params} vs ${a.params}`);
    const curve = iso.rows.filter((r) => r.budget === m.budget);
    assert.ok(m.loss <= Math.min(...curve.map((r) => r.loss)) + 2e-3, `the fitted minimum ${m.loss} is at or below the runs`);
  }
  assert.equal(isoFlopData(report, pts.slice(0, 2)), null);
});

test('a user law from JSON: the Chinchilla form written by hand fits like the built-in one; bad files say what is wrong', () => {
  const spec = {
    name: 'chin-by-hand',
    formula: 'L = E + A/N^alpha + B/D^beta',
    params: {
      E: { positive: true, grid: [0.5, 1, 2] }, A: { positive: true, grid: [1, 150, 22000] }, B: { positive: true, grid: [1, 150, 22000] },
      alpha: { grid: [0, 0.5, 1] }, beta: { grid: [0, 0.5, 1] },
    },
    terms: [{ coef: 'E' }, { coef: 'A', divide: { N: 'alpha' } }, { coef: 'B', divide: { D: 'beta' } }],
  };
  const user = lawFromJson(spec, 'chin.json');
  assert.deepEqual(user.params.map((p) => p.name), ['E', 'A', 'B', 'alpha', 'beta']);
  const pts = chinchillaPoints(0.01, 9);
  const a = fitLaw(user, pts), b = fitLaw(getLaw('chinchilla'), pts);
  assert.ok(Math.abs(a.objective - b.objective) <= 1e-9 * b.objective, `${a.objective} vs ${b.objective}`);
  for (const k of Object.keys(CHIN)) assert.ok(Math.abs(a.params[k] / b.params[k] - 1) < 1e-4, `${k}: ${a.params[k]} vs ${b.params[k]}`);
  const bad = (patch: object, re: RegExp) => assert.throws(() => lawFromJson({ ...spec, ...patch }, 'x.json'), re);
  bad({ name: 'has space' }, /x\.json: "name" must be a word/);
  bad({ terms: [{ coef: 'alpha' }] }, /term 0: "coef" must name a positive param/);
  bad({ terms: [{ coef: 'E', divide: { T: 'alpha' } }] }, /unknown variable 'T'; use N, D, C, 1-S/);
  bad({ terms: [{ coef: 'E' }, { coef: 'A', divide: { N: 'alpha' } }] }, /params not used by any term: B, beta/);
  bad({ params: { ...spec.params, E: { positive: true, grid: [0] } } }, /param E is positive, so its grid values must be > 0/);
  bad({ params: { ...spec.params, E: { positive: true } } }, /param E: "grid" must be a non-empty array/);
  assert.throws(() => lawFromJson([], 'y.json'), /y\.json: expected a JSON object/);
});
