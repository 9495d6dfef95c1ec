// L-BFGS on problems with known minima: Rosenbrock (2-D and 10-D), a convex quadratic, an
// off-origin minimum, and the stop reasons.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lbfgs, type Objective } from '../src/study/fit/lbfgs.js';

/** Extended Rosenbrock: sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2, minimum 0 at all ones. */
const rosenbrock: Objective = (x) => {
  const g = new Float64Array(x.length);
  let v = 0;
  for (let i = 0; i + 1 < x.length; i++) {
    const a = x[i + 1] - x[i] * x[i], b = 1 - x[i];
    v += 100 * a * a + b * b;
    g[i] += -400 * x[i] * a - 2 * b;
    g[i + 1] += 200 * a;
  }
  return { value: v, grad: g };
};

test('Rosenbrock 2-D from (-1.2, 1) converges to (1, 1)', () => {
  const r = lbfgs(rosenbrock, [-1.2, 1], { gtol: 1e-10 });
  assert.ok(r.converged, `stopped: ${r.reason} after ${r.iterations}`);
  assert.ok(Math.abs(r.x[0] - 1) < 1e-6 && Math.abs(r.x[1] - 1) < 1e-6, `x = ${Array.from(r.x)}`);
  assert.ok(r.value < 1e-12, `f = ${r.value}`);
  assert.ok(r.iterations < 100, `${r.iterations} iterations`);
});

test('Rosenbrock 10-D converges to all ones', () => {
  const x0 = Array.from({ length: 10 }, (_, i) => (i % 2 ? 1 : -1.2));
  const r = lbfgs(rosenbrock, x0, { gtol: 1e-9, maxIterations: 2000 });
  assert.ok(r.converged, `stopped: ${r.reason}`);
  for (const v of r.x) assert.ok(Math.abs(v - 1) < 1e-5, `x = ${Array.from(r.x)}`);
});

test('convex quadratic 0.5 (x - c)^T A (x - c) with A ill-conditioned reaches c', () => {
  // A = tridiag(-1, 4, -1) + diag(0 .. 1e3): SPD, condition number ~ 1e2..1e3.
  const n = 20;
  const c = Float64Array.from({ length: n }, (_, i) => Math.sin(i + 1) * 5);
  const f: Objective = (x) => {
    const g = new Float64Array(n);
    let v = 0;
    for (let i = 0; i < n; i++) {
      const u = (j: number) => (j >= 0 && j < n ? x[j] - c[j] : 0);
      const Au = (4 + (1000 * i) / (n - 1)) * u(i) - u(i - 1) - u(i + 1);
      g[i] = Au;
      v += 0.5 * u(i) * Au;
    }
    return { value: v, grad: g };
  };
  const r = lbfgs(f, new Float64Array(n), { gtol: 1e-12 });
  assert.equal(r.reason, 'gradient');
  for (let i = 0; i < n; i++) assert.ok(Math.abs(r.x[i] - c[i]) < 1e-11, `x[${i}] = ${r.x[i]} vs ${c[i]}`);
  assert.ok(r.iterations < 200, `${r.iterations} iterations`);
});

test('minimum off the origin: sum (x_i - c_i)^4 + exp-shaped valley at c', () => {
  // f(x) = sum_i cosh(x_i - c_i) + (x_0 - c_0)^2 (x_1 - c_1)^2: minimum n at x = c.
  const cs = [3, -2, 0.5, 7];
  const f: Objective = (x) => {
    const g = new Float64Array(x.length);
    let v = 0;
    for (let i = 0; i < x.length; i++) {
      v += Math.cosh(x[i] - cs[i]);
      g[i] += Math.sinh(x[i] - cs[i]);
    }
    const u = x[0] - cs[0], w = x[1] - cs[1];
    v += u * u * w * w;
    g[0] += 2 * u * w * w;
    g[1] += 2 * w * u * u;
    return { value: v, grad: g };
  };
  const r = lbfgs(f, [0, 0, 0, 0], { gtol: 1e-11 });
  assert.ok(r.converged, r.reason);
  cs.forEach((c, i) => assert.ok(Math.abs(r.x[i] - c) < 1e-8, `x[${i}] = ${r.x[i]}`));
  assert.ok(Math.abs(r.value - cs.length) < 1e-12);
});

test('stop reasons: max iterations, gradient at start, non-finite start; x0 untouched', () => {
  const x0 = Float64Array.of(-1.2, 1);
  const r = lbfgs(rosenbrock, x0, { maxIterations: 3 });
  assert.equal(r.reason, 'max-iterations');
  assert.equal(r.converged, false);
  assert.deepEqual(Array.from(x0), [-1.2, 1]);
  assert.equal(lbfgs(rosenbrock, [1, 1]).reason, 'gradient');
  assert.equal(lbfgs(() => ({ value: NaN, grad: new Float64Array(1) }), [0]).reason, 'non-finite-start');
  // Memory 1 still converges (just slower): the two-loop recursion with a single pair.
  const m1 = lbfgs(rosenbrock, [-1.2, 1], { m: 1, maxIterations: 5000, gtol: 1e-8 });
  assert.ok(m1.converged, m1.reason);
  assert.throws(() => lbfgs(rosenbrock, [0, 0], { m: 0 }), /memory/);
});

test('the line search survives a function that is infinite beyond a wall', () => {
  // f = (x - 2)^2 for x < 3, +Infinity from 3 on; a first step of length 1 from 0 with slope -4
  // may overshoot into the wall and must back off.
  const f: Objective = (x) => (x[0] < 3 ? { value: (x[0] - 2) ** 2, grad: Float64Array.of(2 * (x[0] - 2)) } : { value: Infinity, grad: Float64Array.of(NaN) });
  const r = lbfgs(f, [-10], { gtol: 1e-10 });
  assert.ok(r.converged, r.reason);
  assert.ok(Math.abs(r.x[0] - 2) < 1e-8);
});
