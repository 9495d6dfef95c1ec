/**
 * Reverse-mode autodiff over the graph recorded by ops.
 *
 * Each op that has an input needing gradients attaches a Node to its output. A node's backward
 * receives the output's gradient (contiguous, in the output's logical shape) and returns one
 * gradient per input (or null where none is needed). Gradients it returns become owned by the
 * engine, which accumulates them per tensor and hands the final sum to the producer's node.
 *
 * Memory: a node is released (its closure, and with it every buffer it saved for backward) right
 * after it runs, and each gradient is dropped once its consumer has used it, so peak memory during
 * backward is the saved activations still waiting plus the gradients in flight. Dropped gradients go
 * back to the buffer pool at once (a backward may read gout only during its call); inside a step
 * scope so does the storage of each op output once its own node has run, since every consumer of a
 * tensor (and of its views) comes later in topological order and so has already run. A gradient a
 * leaf adopts as `.grad` escapes the scope (the trainer releases it after zeroGrad).
 *
 * Sharing: one array may be the pending gradient of several tensors (add's backward hands g to both
 * inputs; reshape passes it through), so nothing is copied for ops that only read it. Backward
 * closures never write into gout; the engine copies a shared array before accumulating into it or
 * letting a leaf adopt it, and releases an array only when no pending gradient refers to it.
 */
import { backend } from '../backend/index.js';
import { Tensor } from './tensor.js';
import { alloc, release, escape, inStepScope, ownsStorage } from './pool.js';

export interface Node {
  name: string;
  inputs: Tensor[]; // emptied after backward runs
  backward: ((gout: Float32Array) => (Float32Array | null)[]) | null;
}

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn with graph recording off (inference, optimizer updates, evaluation). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: models are deep enough (hundreds of ops) that recursion depth is a risk.
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node ? t.node.inputs : [];
    if (i < inputs.length) {
      top[1]++;
      const c = inputs[i];
      if (c.requiresGrad && !seen.has(c)) {
        seen.add(c);
        stack.push([c, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order; // inputs before outputs
}

/**
 * Backpropagates from `root`. Leaves with requiresGrad receive (accumulate into) `.grad`.
 * `seed` defaults to ones (so a scalar loss gets d loss / d loss = 1).
 */
export function backward(root: Tensor, seed?: Float32Array): void {
  if (!root.requiresGrad) throw new Error('backward(): tensor does not require grad (was it computed under noGrad?)');
  const k = backend();
  const order = topoOrder(root);
  const grads = new Map<Tensor, Float32Array>();
  // how many entries of `grads` hold each array (shared gradients are copied on write)
  const holders = new Map<Float32Array, number>();
  const hold = (t: Tensor, a: Float32Array): void => {
    grads.set(t, a);
    holders.set(a, (holders.get(a) ?? 0) + 1);
  };
  const take = (t: Tensor): Float32Array | undefined => {
    const a = grads.get(t);
    if (!a) return undefined;
    grads.delete(t);
    const n = holders.get(a)! - 1;
    if (n) holders.set(a, n);
    else holders.delete(a);
    return a;
  };
  const shared = (a: Float32Array): boolean => holders.has(a);
  const g0 = seed ?? new Float32Array(root.size).fill(1);
  if (g0.length !== root.size) throw new Error(`backward(): seed has ${g0.length} elements, tensor ${root.size}`);
  hold(root, g0);

  const recycle = inStepScope();
  for (let i = order.length - 1; i >= 0; i--) {
    const t = order[i];
    const g = take(t);
    const node = t.node;
    if (!g) {
      if (node && recycle && ownsStorage(t.data as Float32Array, t)) release(t.data as Float32Array);
      continue;
    }
    if (!node) {
      // A leaf: accumulate into .grad (an unshared array is adopted, a shared one copied).
      if (t.grad) {
        k.axpy(1, g, t.grad.f32);
        if (!shared(g)) release(g);
      } else {
        const own = shared(g) ? copyOf(g) : g;
        escape(own);
        t.grad = new Tensor(own, t.shape);
      }
      continue;
    }
    if (!node.backward) throw new Error(`backward(): graph through '${node.name}' was already freed (backward called twice?)`);
    const gins = node.backward(g);
    node.backward = null; // frees everything the op saved
    node.inputs.forEach((inp, j) => {
      const gi = gins[j];
      if (!gi || !inp.requiresGrad) return;
      if (gi.length !== inp.size) throw new Error(`backward(): op '${node.name}' returned a gradient of ${gi.length} elements for an input of ${inp.size}`);
      let prev = grads.get(inp);
      if (!prev) {
        hold(inp, gi);
        return;
      }
      if (holders.get(prev)! > 1 || prev === gi) { // shared (or add(x, x)): accumulate into a private copy
        take(inp);
        prev = copyOf(prev);
        hold(inp, prev);
      }
      k.axpy(1, gi, prev);
    });
    // every returned array and g itself go back unless a pending gradient still refers to them
    for (const gi of new Set(gins)) if (gi && gi !== g && !shared(gi)) release(gi);
    if (!shared(g)) release(g);
    if (recycle && ownsStorage(t.data as Float32Array, t) && !gins.includes(t.data as Float32Array)) release(t.data as Float32Array);
    // Keep the (now empty) node so a second backward through it fails loudly, but drop the
    // references that would keep inputs' storage alive.
    node.inputs = [];
  }
}

function copyOf(a: Float32Array): Float32Array {
  const c = alloc(a.length);
  c.set(a);
  return c;
}
