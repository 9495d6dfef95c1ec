// Compute-matched comparison on hand-made results: the dense frontier, the log-log interpolation
// of the dense compute for a loss, the multiplier, seeds averaged, and extrapolation flagged.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { compareResults, denseFrontier, denseComputeFor, type SweepResult } from '../src/index.js';

function r(family: string, compute: number, loss: number, seed = 0, group = `${family}@${compute}`): SweepResult {
  return {
    hash: `${group}-${seed}`, name: group, family, seed, budget: null, group, axes: {}, inSpec: true, steps: 1, valLoss: loss,
    paramsTotal: 1, paramsActive: 1, flopsPerToken: 1, tokens: compute, trainingFlops: compute, sparsity: family === 'dense' ? 0 : 0.5,
  };
}

const close = (a: number | null, b: number, what: string) => assert.ok(a !== null && Math.abs(a / b - 1) < 1e-9, `${what}: ${a} vs ${b}`);

describe('compute-matched comparison', () => {
  test('the dense frontier drops dense runs beaten by cheaper ones', () => {
    const f = denseFrontier([{ compute: 4e12, loss: 2 }, { compute: 1e12, loss: 4 }, { compute: 3e12, loss: 3.9 }, { compute: 1e12, loss: 4.5 }]);
    assert.deepEqual(f, [{ compute: 1e12, loss: 4 }, { compute: 3e12, loss: 3.9 }, { compute: 4e12, loss: 2 }]);
    assert.deepEqual(denseFrontier([{ compute: 1e12, loss: 4 }, { compute: 3e12, loss: 4.2 }]), [{ compute: 1e12, loss: 4 }]);
  });

  test('runs of one budget (computes within 5%) give one frontier point, the best of them', () => {
    // two widths per isoFLOP budget, computes apart by step rounding: without merging, the pairs at
    // 3e12 make a vertical segment and any loss below 1.9 would read as "3e12 FLOPs of dense"
    const f = denseFrontier([{ compute: 1e12, loss: 2.5 }, { compute: 1.0004e12, loss: 2.6 }, { compute: 3e12, loss: 2 }, { compute: 3.001e12, loss: 1.9 },
      { compute: 9e12, loss: 1.8 }, { compute: 9.002e12, loss: 1.7 }, { compute: 9.004e12, loss: 1.75 }]);
    assert.deepEqual(f, [{ compute: 1e12, loss: 2.5 }, { compute: 3.001e12, loss: 1.9 }, { compute: 9.002e12, loss: 1.7 }]);
    // the budget's first run off the frontier (beaten by a cheaper budget), its second one on it
    assert.deepEqual(denseFrontier([{ compute: 1e12, loss: 2 }, { compute: 3e12, loss: 2.1 }, { compute: 3.01e12, loss: 1.5 }]),
      [{ compute: 1e12, loss: 2 }, { compute: 3.01e12, loss: 1.5 }]);
    // extrapolating below the range follows the last real segment: log-log slope between (3.001e12, 1.9) and (9.002e12, 1.7)
    const m = denseComputeFor(f, 1.6)!;
    const slope = Math.log(9.002e12 / 3.001e12) / Math.log(1.7 / 1.9);
    close(m.compute, 9.002e12 * Math.exp(slope * Math.log(1.6 / 1.7)), 'extrapolated compute');
    assert.equal(m.extrapolated, 'below-dense-range');
  });

  test('multipliers by hand: log-log interpolation, extrapolation flagged', () => {
    // dense frontier (1e12, 4) -> (4e12, 2): in log-log a line of slope -1/2, L = 4 (C/1e12)^(-1/2),
    // so C(L) = 1e12 (4/L)^2. (3e12, 4.1) is off the frontier (worse than the cheaper 1e12 run).
    //   MoE at 5e11 FLOPs, loss 4/sqrt(2):  C(L) = 1e12 * 2 = 2e12 -> multiplier 2e12 / 5e11 = 4
    //   MoE at 4e12 FLOPs, loss 1 (below every dense loss): extrapolated C(1) = 16e12 -> 4, flagged
    //   MoE at 1e12 FLOPs, loss 8 (above): extrapolated C(8) = 0.25e12 -> 0.25, flagged
    const results = [r('dense', 1e12, 4), r('dense', 3e12, 4.1), r('dense', 4e12, 2),
      r('moe-E8-k2', 5e11, 4 / Math.SQRT2), r('moe-E8-k2', 4e12, 1), r('moe-E8-k2', 1e12, 8)];
    const c = compareResults(results);
    assert.deepEqual(c.denseFrontier, [{ compute: 1e12, loss: 4 }, { compute: 4e12, loss: 2 }]);
    assert.deepEqual(c.families.map((f) => [f.family, f.points.length]), [['dense', 3], ['moe-E8-k2', 3]]);
    const m = c.multipliers;
    assert.deepEqual(m.map((x) => x.compute), [5e11, 1e12, 4e12]);
    close(m[0].denseCompute, 2e12, 'dense compute for 4/sqrt2');
    close(m[0].multiplier, 4, 'multiplier');
    assert.equal(m[0].extrapolated, null);
    close(m[1].multiplier, 0.25, 'above range');
    assert.equal(m[1].extrapolated, 'above-dense-range');
    close(m[2].denseCompute, 16e12, 'below range');
    close(m[2].multiplier, 4, 'below range');
    assert.equal(m[2].extrapolated, 'below-dense-range');
    // geometric means: all (4 * 0.25 * 4)^(1/3) = 4^(1/3); interpolated only: 4
    close(c.summary[0].geomeanMultiplier, Math.cbrt(4), 'geomean');
    close(c.summary[0].interpolatedGeomean, 4, 'interpolated geomean');

    const strict = compareResults(results, { extrapolate: false });
    assert.deepEqual(strict.multipliers.map((x) => x.multiplier === null), [false, true, true]);
  });

  test('a loss between interior frontier points uses that segment', () => {
    // three frontier points; L = 3 lies between (2e12, 3.5) and (8e12, 2.5):
    // log C = log 2e12 + (log 3.5 - log 3) / (log 3.5 - log 2.5) * log 4
    const f = [{ compute: 1e12, loss: 4 }, { compute: 2e12, loss: 3.5 }, { compute: 8e12, loss: 2.5 }];
    const expect = 2e12 * Math.exp((Math.log(3.5 / 3) / Math.log(3.5 / 2.5)) * Math.log(4));
    const got = denseComputeFor(f, 3)!;
    close(got.compute, expect, 'interior');
    assert.equal(got.extrapolated, null);
    close(denseComputeFor(f, 3.5)!.compute, 2e12, 'at a frontier point');
    close(denseComputeFor(f, 4)!.compute, 1e12, 'at the first point');
    close(denseComputeFor(f, 2.5)!.compute, 8e12, 'at the last point');
    assert.equal(denseComputeFor([{ compute: 1e12, loss: 4 }], 4), null, 'one frontier point has no slope');
  });

  test('seeds of one config are averaged before comparing', () => {
    const c = compareResults([
      r('dense', 1e12, 4.1, 0, 'd1'), r('dense', 1e12, 3.9, 1, 'd1'), r('dense', 4e12, 2, 0, 'd2'),
      r('moe-E4-k1', 5e11, 4 / Math.SQRT2 + 0.1, 0, 'm'), r('moe-E4-k1', 5e11, 4 / Math.SQRT2 - 0.1, 1, 'm'),
    ]);
    const d1 = c.families[0].points[0];
    assert.equal(d1.seeds, 2);
    close(d1.loss, 4, 'mean loss');
    close(d1.lossStd, Math.sqrt(0.02), 'std');
    close(c.multipliers[0].multiplier, 4, 'multiplier of the mean');
  });

  test('without dense runs there is no multiplier', () => {
    const c = compareResults([r('moe-E4-k1', 1e12, 3), r('peer', 1e12, 2.9)]);
    assert.deepEqual(c.denseFrontier, []);
    assert.ok(c.multipliers.every((m) => m.multiplier === null));
    assert.deepEqual(c.summary.map((s) => s.geomeanMultiplier), [null, null]);
  });
});
