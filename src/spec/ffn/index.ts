// The registry of feed-forward kinds. A new kind is one file in this folder exporting an FfnKind,
// one entry in FFN_KINDS below, and its nn module with one builder line in nn/build.ts (the
// compiler insists on that line). Everything else (config schema, types, spec, counts, memory,
// tensor names) follows from the entry.
import { z } from 'zod';
import type { AnyFfnKind, FfnKind } from './kind.js';
import { denseKind } from './dense.js';
import { moeKind } from './moe.js';
import { peerKind } from './peer.js';

export const FFN_KINDS = [denseKind, moeKind, peerKind] as const;

type Kinds = (typeof FFN_KINDS)[number];
type ConfigOf<K> = K extends FfnKind<any, infer C, any> ? C : never;
type SpecOf<K> = K extends FfnKind<any, any, infer S> ? S : never;
type SchemasOf<T extends readonly unknown[]> = { -readonly [I in keyof T]: T[I] extends { schema: infer S } ? S : never };

export type FfnType = Kinds['type'];
/** A resolved model.ffn section (all derived defaults filled in). */
export type FfnConfig = ConfigOf<Kinds>;
/** The effective sizes of one layer's feed-forward block. */
export type FfnSpec = SpecOf<Kinds>;

export const FFN_TYPES: readonly FfnType[] = FFN_KINDS.map((k) => k.type);

/** model.ffn: one strict object per kind, told apart by `type`. */
export const ffnSchema = z.discriminatedUnion('type', FFN_KINDS.map((k) => k.schema) as unknown as SchemasOf<typeof FFN_KINDS>);

const byType = new Map<string, AnyFfnKind>(FFN_KINDS.map((k) => [k.type, k as unknown as AnyFfnKind]));

/** The kind named `type` (a resolved config's ffn.type or a layer spec's kind). */
export function ffnKind(type: string): AnyFfnKind {
  const k = byType.get(type);
  if (!k) throw new Error(`unknown feed-forward kind '${type}'; known kinds: ${FFN_TYPES.join(', ')}`);
  return k;
}

export type { FfnTensor, FfnBuffer, ModelSizes } from './kind.js';
export type { DenseFfnConfig, DenseFfnSpec } from './dense.js';
export type { MoeFfnConfig, MoeFfnSpec } from './moe.js';
export type { PeerFfnConfig, PeerFfnSpec } from './peer.js';
