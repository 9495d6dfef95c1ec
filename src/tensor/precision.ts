// The arithmetic of the matrix products the ops run (train.precision): 'fp32', or 'bf16' mixed
// precision, where linear() multiplies operands rounded to bf16 with fp32 accumulation (the kernels'
// gemmBf16) while every tensor, gradient and master weight stays fp32. A process-wide setting, like
// the thread count: the trainer sets it for a run and restores the previous one afterwards. The fused
// attention has its own switch (setAttentionPrecision), fp32 unless a program asks for bf16.
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
  checkPrecision(p, 'matmul', 'train.precision "bf16"');
  const prev = current;
  current = p;
  return prev;
}

let centering = true;

/** Whether bf16 linear layers centre their activation operand (ops/bf16_center.ts); on by default. */
export function bf16Centering(): boolean {
  return centering;
}

/**
 * Turns the centring of bf16 GEMM activations on or off; returns the previous setting. The trainer
 * sets it from train.bf16Centering for the run and restores it. Exact in real arithmetic; it kept
 * dense-d256's bf16 runs on the fp32 loss curve, while moe64-d256 left its plateau closer to fp32
 * without it (README, Mixed precision).
 */
export function setBf16Centering(on: boolean): boolean {
  const prev = centering;
  centering = on;
  return prev;
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
