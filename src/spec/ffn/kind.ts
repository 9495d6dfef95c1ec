// The contract every feed-forward kind (dense, MoE, PEER, ...) fulfils. A kind is one file in this
// folder holding everything moelab knows about it outside nn/: its config section (zod schema,
// cross-field checks, derived defaults), where it is placed, and for one layer its effective sizes,
// tensors, counts (the PyTorch reference's conventions), activation memory and memory advice.
// The model spec, counts, memory estimate and checkpoint shapes all ask the kind; nothing else
// switches on the kind's name.
import type { z } from 'zod';
import type { IssueSink } from '../../config/fields.js';

/** One tensor of a feed-forward block, named relative to the block (`fc1.weight`). */
export interface FfnTensor {
  name: string;
  shape: number[];
  /** Routed-expert tensor: one token uses only part of it (see FfnKind.expertActive). */
  expert?: boolean;
  /** Row-sparse gradient: each token looks up FfnKind.sparseLookups rows (sparse Adam). */
  sparse?: boolean;
  /** Stored as bfloat16 (2 bytes per element; only `sparse` tensors, the PEER tables, can be). */
  bf16?: boolean;
}

/** A persistent non-parameter tensor (e.g. BatchNorm running statistics), as in state_dict(). */
export interface FfnBuffer {
  name: string;
  shape: number[];
  dtype: 'F32' | 'I64';
}

/** The model sizes a layer's advice may mention. */
export interface ModelSizes {
  d: number;
  layers: number;
  seq: number;
}

export interface FfnKind<S extends z.AnyZodObject, Cfg extends { type: string }, Spec extends { kind: Cfg['type'] }> {
  readonly type: Cfg['type'];
  /** model.ffn for this kind: a strict object with a `type` literal; derived fields optional. */
  readonly schema: S;
  /** Fields whose default depends on other fields; they are re-derived when those change. */
  readonly derivable: readonly string[];
  /** Fields that change training but not the parameters or function of the model. */
  readonly trainingOnly: readonly string[];
  /** Cross-field checks of the parsed section (paths relative to model.ffn). */
  check(f: z.output<S>, model: { d: number; layers: number }, issue: IssueSink): void;
  /** The section with every derived default filled in, keys in schema order. */
  resolve(f: z.output<S>, model: { d: number }): Cfg;
  /** Whether layer i gets this kind; the other layers get a dense MLP d -> 4d -> d. */
  inLayer(cfg: Cfg, i: number): boolean;
  /** Effective sizes of one layer of this kind. */
  layer(cfg: Cfg, d: number): Spec;
  /** Parameters, in the reference's state_dict order and layouts (Linear weights [out, in]). */
  parameters(s: Spec, d: number): FfnTensor[];
  buffers(s: Spec): FfnBuffer[];
  /** Expert parameters one token uses (out of the tensors marked `expert`). */
  expertActive(s: Spec, d: number): number;
  /** Forward multiply-accumulates per token (weights only, the reference's convention). */
  macs(s: Spec, d: number): number;
  /** Floats per token this block keeps for backward (or needs at its peak). */
  activationFloats(s: Spec, d: number): number;
  /** Rows looked up per token in each `sparse` tensor. */
  sparseLookups?(s: Spec): number;
  /** Whether the optimizer moments of the `sparse` tensors are bf16. */
  bf16Moments?(s: Spec): boolean;
  /** A lighter variant for the memory check and the config change that gives it. */
  lighter?(s: Spec): { layer: Spec; change: string } | undefined;
  /** What to shrink when a model with this kind does not fit in memory. */
  shrinkHint(s: Spec, model: ModelSizes): string;
}

/** A kind with its types erased, for dispatch by name (the spec's `kind` picks the right one). */
export type AnyFfnKind = FfnKind<z.AnyZodObject, any, any>;

/** w1 + b1 + w2 + b2 of one d -> h -> d MLP. */
export const mlpParams = (d: number, h: number): number => d * h + h + h * d + d;

/** The tensors of a d -> h -> d MLP under `prefix` (torch's fc1 / fc2 Linear layers). */
export function mlpTensors(prefix: string, d: number, h: number): FfnTensor[] {
  const p = prefix ? `${prefix}.` : '';
  return [
    { name: `${p}fc1.weight`, shape: [h, d] },
    { name: `${p}fc1.bias`, shape: [h] },
    { name: `${p}fc2.weight`, shape: [d, h] },
    { name: `${p}fc2.bias`, shape: [d] },
  ];
}
