/**
 * The routing family of the kernel contract: MoE routing decisions that are not plain top-k over a
 * token's row. Part of `Kernels` (../kernels.ts), with its conventions: raw typed arrays, explicit
 * sizes, row-major, outputs written, Int32 ids.
 */
import type { F32, I32 } from '../kernels.js';

export interface RoutingKernels {
  /**
   * Expert-choice routing (Zhou et al. 2022): every expert e < E takes the C tokens with the largest
   * score in its column of scores [T, E], in rank order:
   *   tok[e*C + c] = the token of rank c in column e,  vals[e*C + c] = scores[tok[e*C + c], e].
   * Ranking as topk: larger first, NaN above every number, -0 equal to +0, equal scores keep the
   * lower token index first. Requires C <= T. A token may be taken by zero, one or several experts.
   */
  expertChoice(T: number, E: number, C: number, scores: F32, tok: I32, vals: F32): void;
}

/** Every routing kernel name, checked by the compiler against RoutingKernels. */
export const ROUTING_KERNEL_NAMES: Record<keyof RoutingKernels, true> = { expertChoice: true };
