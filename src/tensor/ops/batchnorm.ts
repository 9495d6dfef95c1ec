/** BatchNorm over the rows of a [T, C] tensor (torch.nn.BatchNorm1d), with explicit running statistics. */
import { backend } from '../../backend/index.js';
import { Tensor, attach } from '../tensor.js';
import { alloc } from '../pool.js';

/** Running statistics of a BatchNorm, [C] each. */
export interface BatchNormStats {
  mean: Tensor;
  var: Tensor;
}

export interface BatchNormOptions {
  /** Batch statistics (and new running statistics) when true; the running statistics when false. */
  training: boolean;
  /** Added to the variance; default 1e-5. */
  eps?: number;
  /** Weight of the batch in the running statistics; default 0.1. */
  momentum?: number;
}

/**
 * y = (x - mean) / sqrt(var + eps) * weight + bias, per channel c over the T rows of x [T, C].
 * Training (needs T >= 2): mean, var = the batch mean and biased variance (in double precision),
 *   and the returned running statistics are
 *   mean' = (1 - momentum) running.mean + momentum * mean,
 *   var'  = (1 - momentum) running.var  + momentum * var * T / (T - 1)   (unbiased, as torch).
 * Eval: mean, var = running.mean, running.var, returned unchanged (the same tensors).
 * Gradients reach x, weight and bias (in training also through the batch statistics).
 * Buffers: y and, in training, the new running statistics are fresh; `running` is never written.
 */
export function batchNorm(x: Tensor, weight: Tensor, bias: Tensor, running: BatchNormStats, o: BatchNormOptions):
  { y: Tensor; running: BatchNormStats } {
  const C = weight.size, eps = o.eps ?? 1e-5, momentum = o.momentum ?? 0.1, training = o.training;
  if (x.ndim !== 2 || x.shape[1] !== C) throw new Error(`batchNorm: expected x of shape [T, ${C}], got [${x.shape.join(', ')}]`);
  for (const [name, t] of [['bias', bias], ['running.mean', running.mean], ['running.var', running.var]] as const) {
    if (t.size !== C) throw new Error(`batchNorm: ${name} must have ${C} elements, got ${t.size}`);
  }
  const T = x.shape[0];
  if (training && T < 2) throw new Error(`batchNorm: expected more than 1 value per channel when training, got [${T}, ${C}]`);
  const xc = x.contiguous();
  const y = alloc(T * C), mean = alloc(C), rstd = alloc(C);
  // the kernel updates running statistics in place, so it gets copies (read only in eval)
  const rm = training ? running.mean.f32.slice() : running.mean.f32, rv = training ? running.var.f32.slice() : running.var.f32;
  const K = backend();
  K.peerBatchNorm(T, C, training, eps, momentum, xc.f32, weight.f32, bias.f32, rm, rv, y, mean, rstd);
  const out = attach(new Tensor(y, [T, C]), [xc, weight, bias], (gy) => {
    const gx = alloc(T * C), gw = alloc(C), gb = alloc(C);
    K.peerBatchNormBackward(T, C, training, xc.f32, weight.f32, mean, rstd, gy, gx, gw, gb);
    return [gx, gw, gb];
  }, 'batchNorm');
  return { y: out, running: training ? { mean: new Tensor(rm, [C]), var: new Tensor(rv, [C]) } : running };
}
