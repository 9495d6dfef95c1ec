/**
 * One optimizer step, the only one in moelab: the trainer and the throughput benchmark both call it.
 *
 *   for micro in 0..accum-1:  key (step, micro) -> forward -> loss + aux -> backward(1/accum)
 *   gnorm = sqrt(sum of squared gradients);  clip to train.clip;  optimizer.step(lr(step));  zero grads;
 *   every feed-forward's afterStep() (state updated from the step's routing, not by gradients)
 *
 * Random state is explicit: dropout masks and router jitter are pure functions of the model seed and
 * the key (step, micro-batch) set here, so a resumed run replays exactly what an uninterrupted run
 * would have drawn. Data order is the caller's (`nextBatch`), whose state the trainer checkpoints.
 *
 * Memory: the step runs in a buffer-pool step scope (tensor/pool.ts), so its activations, gradients
 * and temporaries reuse the previous step's buffers; the parameter gradients the optimizer dropped go
 * back to the pool after zeroGrad. Nothing the step builds outlives it (it returns plain numbers).
 *
 * The NaN guard runs before the optimizer touches anything: a non-finite loss or gradient norm
 * throws `TrainingDiverged` and leaves the parameters and optimizer moments as the previous step
 * left them (gradients dropped), so a checkpoint taken afterwards is still the last good state.
 */
import { Tensor, add, stepScope, release } from '../tensor/index.js';
import type { GPT } from '../nn/gpt.js';
import { FeedForward } from '../nn/ffn.js';
import type { Optimizer } from '../optim/optimizer.js';
import type { Batch } from '../data/loader.js';
import type { TrainConfig } from '../config/schema.js';
import { learningRate } from './schedule.js';

export class TrainingDiverged extends Error {
  constructor(message: string, readonly step: number, readonly quantity: 'loss' | 'gradient norm' | 'parameters') {
    super(message);
    this.name = 'TrainingDiverged';
  }
}

export interface StepInputs {
  model: GPT;
  optimizer: Optimizer;
  train: TrainConfig;
  /** Draws the next micro-batch ([batch, seq] inputs and targets). */
  nextBatch: () => Batch;
}

export interface StepResult {
  /** 0-based index of the step that ran. */
  step: number;
  /** Mean language-model loss over the micro-batches (nats/token). */
  loss: number;
  /** Mean auxiliary (router) loss, already weighted; 0 without MoE. */
  aux: number;
  lr: number;
  /** Gradient norm before clipping. */
  gradNorm: number;
  clipped: boolean;
  tokens: number;
  /** Wall time of the phases, milliseconds. */
  ms: { forward: number; backward: number; optimizer: number; total: number };
}

export function trainStep(s: StepInputs, step: number): StepResult {
  return stepScope(() => pooledStep(s, step));
}

function pooledStep(s: StepInputs, step: number): StepResult {
  const { model, optimizer, train: tc } = s;
  const lr = learningRate(tc, step);
  const t0 = performance.now();
  let fwd = 0, bwd = 0, lossSum = 0, auxSum = 0, tokens = 0;
  for (let micro = 0; micro < tc.accum; micro++) {
    const b = s.nextBatch();
    model.setRandomKey(step, micro);
    const ta = performance.now();
    const { loss, aux } = model.forward(new Tensor(b.x, [b.batch, b.seq]), new Tensor(b.y, [b.batch * b.seq]));
    const l = loss!.item();
    const a = aux ? aux.item() : 0;
    const tb = performance.now();
    if (!Number.isFinite(l) || !Number.isFinite(a)) {
      optimizer.zeroGrad();
      const what = Number.isFinite(l) ? `auxiliary loss became ${a}` : `loss became ${l}`;
      throw new TrainingDiverged(`${what} at step ${step + 1}`, step, 'loss');
    }
    (aux ? add(loss!, aux) : loss!).backward(Float32Array.of(1 / tc.accum));
    fwd += tb - ta;
    bwd += performance.now() - tb;
    lossSum += l;
    auxSum += a;
    tokens += b.batch * b.seq;
  }
  const t1 = performance.now();
  const gradNorm = Math.sqrt(optimizer.gradSquaredNorm());
  if (!Number.isFinite(gradNorm)) {
    optimizer.zeroGrad();
    throw new TrainingDiverged(`gradient norm became ${gradNorm} at step ${step + 1}`, step, 'gradient norm');
  }
  const clipped = tc.clip > 0 && gradNorm > tc.clip;
  if (clipped) optimizer.scaleGrads(tc.clip / gradNorm);
  optimizer.step(lr);
  const params = model.parameters(), grads = params.map((p) => p.grad);
  optimizer.zeroGrad();
  grads.forEach((g, i) => { if (g && params[i].grad !== g) release(g.f32); });
  for (const m of model.modules()) if (m instanceof FeedForward) m.afterStep(); // e.g. loss-free balancing bias
  const t2 = performance.now();
  return {
    step,
    loss: lossSum / tc.accum,
    aux: auxSum / tc.accum,
    lr,
    gradNorm,
    clipped,
    tokens,
    ms: { forward: fwd, backward: bwd, optimizer: t2 - t1, total: t2 - t0 },
  };
}

/** True when every parameter and buffer of the model is finite (checked before a checkpoint). */
export function modelIsFinite(model: GPT): boolean {
  for (const [, t] of [...model.namedParameters(), ...model.namedBuffers()]) {
    const d = t.data as ArrayLike<number>;
    if (t.dtype === 'bf16') {
      for (let i = 0; i < d.length; i++) if ((d[i] & 0x7f80) === 0x7f80) return false; // exponent all ones: Inf or NaN
      continue;
    }
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) return false;
  }
  return true;
}
