// The arithmetic of the matrix products the ops run (train.precision): 'fp32', or 'bf16' mixed
// precision, where linear() multiplies operands rounded to bf16 with fp32 accumulation (the kernels'
// gemmBf16) while every tensor, gradient and master weight stays fp32. A process-wide setting, like
// the thread count, read by the ops as they run: the trainer applies a run's settings around each of
// its synchronous steps (withArithmetic), so runs that take turns in one process keep their own. The
// fused attention has its own switch (setAttentionPrecision), fp32 unless a program asks for bf16.
import { backend } from '../backend/index.js';

export type MatmulPrecision = 'fp32' | 'bf16';

let current: MatmulPrecision = 'fp32';

export function matmulPrecision(): MatmulPrecision {
  return current;
}

/**
 * Selects the matmul arithmetic; returns the previous setting. 'bf16' is refused (with what to do)
 * when the kernels cannot run it: the native backend needs AVX512_BF16 and the avx512 tier. It is
 * not emulated there: emulation does the fp32 multiply-adds plus conversions, so it is slower than fp32.
 */
export function setMatmulPrecision(p: MatmulPrecision): MatmulPrecision {
  checkMatmulPrecision(p);
  const prev = current;
  current = p;
  return prev;
}

/** Throws what setMatmulPrecision(p) would (an unknown value, bf16 where it cannot run); changes nothing. */
export function checkMatmulPrecision(p: MatmulPrecision): void {
  checkPrecision(p, 'matmul', 'train.precision "bf16"');
}

let centering = true;

/** Whether bf16 linear layers centre their activation operand (ops/bf16_center.ts); on by default. */
export function bf16Centering(): boolean {
  return centering;
}

/**
 * Turns the centring of bf16 GEMM activations on or off; returns the previous setting. The trainer
 * applies train.bf16Centering around each step (withArithmetic). Exact in real arithmetic; it kept
 * dense-d256's bf16 runs on the fp32 loss curve, while moe64-d256 left its plateau closer to fp32
 * without it (README, Mixed precision).
 */
export function setBf16Centering(on: boolean): boolean {
  const prev = centering;
  centering = on;
  return prev;
}

/** A run's arithmetic: its train.precision and train.bf16Centering (a TrainConfig has both). */
export interface RunArithmetic {
  precision: MatmulPrecision;
  bf16Centering: boolean;
}

/**
 * Runs the synchronous `fn` under a run's arithmetic and restores the previous settings after it.
 * Runs that take turns in one process (a queue worker with --concurrency 2, a program training two
 * models with Promise.all) each compute with their own this way, where setting them once per run
 * would let the later run's settings leak into the earlier one's steps. `fn` must not be async:
 * whatever it awaited would run under the settings of whichever run stepped last.
 */
export function withArithmetic<T>(a: RunArithmetic, fn: () => T): T {
  const prevPrecision = setMatmulPrecision(a.precision), prevCentering = setBf16Centering(a.bf16Centering);
  try {
    const out = fn();
    if (out instanceof Promise) throw new TypeError('withArithmetic runs synchronous code only: an async function would leave its awaited work under other settings');
    return out;
  } finally {
    current = prevPrecision;
    centering = prevCentering;
  }
}

let attention: MatmulPrecision = 'fp32';

export function attentionPrecision(): MatmulPrecision {
  return attention;
}

/**
 * Selects the arithmetic of the fused attention's tile products (causalAttention), apart from the
 * matmul precision; returns the previous setting. 'bf16' runs attentionBf16 / attentionBackwardBf16
 * (q, k, v, the probabilities, gout and the score gradients rounded where they enter a product).
 * Off by default, and train.precision "bf16" leaves it off: at head size 64 it is no faster than
 * the fp32 kernel (Zen 4), and it costs accuracy even with its mean shift (dense-d256, 5 seeds:
 * validation loss at 1,000 steps 7.2% above fp32, 3.7% above bf16 GEMMs with fp32 attention;
 * README, Mixed precision).
 */
export function setAttentionPrecision(p: MatmulPrecision): MatmulPrecision {
  checkPrecision(p, 'attention', 'bf16 attention');
  const prev = attention;
  attention = p;
  return prev;
}

/** Refuses anything but 'fp32' / 'bf16', and 'bf16' (naming `what`) where the bf16 kernels cannot run. */
function checkPrecision(p: MatmulPrecision, setting: string, what: string): void {
  if (p !== 'fp32' && p !== 'bf16') throw new RangeError(`${setting} precision must be 'fp32' or 'bf16', got ${JSON.stringify(p)}`);
  if (p === 'fp32') return;
  const info = backend().cpuInfo();
  if (!info.bf16) {
    throw new Error(`${what} needs a CPU with AVX512_BF16 instructions (bf16 dot products, e.g. AMD Zen 4/5, ` +
      `Intel Cooper Lake or Sapphire Rapids and later) running moelab's avx512 kernels; this process runs the ` +
      `${info.isa} kernels${info.avx512f ? ' (MOELAB_ISA may have lowered the tier, or the CPU lacks AVX512_BF16)' : ''}. ` +
      'Train with train.precision "fp32" (the default) on this machine.');
  }
}
