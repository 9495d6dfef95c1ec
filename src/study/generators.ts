// The two MoE families the scaling papers sweep, as lists of model.ffn overrides of a base MoE:
//
// fixed-active (Artetxe et al. 2021; Abnar et al. 2025 Sec. 3 "fixed active parameters"): the
//   number of experts E grows while topk and expertHidden stay as in the base, so the parameters a
//   token uses stay fixed (up to the router, E*d per MoE layer) and total parameters grow with E.
//
// fixed-total (Abnar et al. 2025, "fixed total parameters, growing sparsity"): the routed-expert
//   parameters stay ~B while the sparsity S = 1 - k/E grows, so active parameters shrink. With k
//   (topk) and granularity G from the base and L_moe MoE layers, for each requested S:
//     E          = round(k / (1 - S))           (coarse experts; the realised S = 1 - k/E is recorded)
//     expertHidden h = G * round(((B / L_moe) / E - G*d) / ((2d + 1) * G))
//   because one MoE layer's routed experts hold E*G fine experts of d -> h/G -> d with biases:
//     E*G * ((h/G)*(2d+1) + d) = E * (h*(2d+1) + G*d) parameters  (spec/ffn/moe.ts).
//   B defaults to the base config's routed-expert parameters (countModel().expertParamsTotal).
import type { Config } from '../config/schema.js';
import { ConfigError } from '../config/load.js';
import { countModel } from '../spec/count.js';
import type { SweepGenerator } from './spec.js';

export interface GeneratedVariant {
  /** Dotted overrides applied to the point's config. */
  overrides: Record<string, unknown>;
  /** What the generator chose, recorded among the point's axis values. */
  values: Record<string, number>;
}

function baseMoe(base: Config, kind: string) {
  const f = base.model.ffn;
  if (f.type !== 'moe') throw new ConfigError(`generator ${kind}: the base config's model.ffn must be a MoE (type 'moe'), got type '${f.type}'`);
  return f;
}

/** E grows, topk and expertHidden stay: active parameters fixed (but for the router). */
export function fixedActiveVariants(base: Config, experts: readonly number[]): GeneratedVariant[] {
  const f = baseMoe(base, 'fixed-active');
  return experts.map((E, i) => {
    if (!Number.isInteger(E) || E < f.topk) {
      throw new ConfigError(`generator.experts[${i}]: each expert count must be an integer >= the base topk (${f.topk}), got ${E}`);
    }
    return { overrides: { 'model.ffn.experts': E }, values: { experts: E } };
  });
}

/** Routed-expert parameters of one MoE layer with E coarse experts of width h (see file comment). */
export function expertParamsPerLayer(d: number, E: number, h: number, G: number): number {
  return E * (h * (2 * d + 1) + G * d);
}

/** Total routed-expert parameters ~fixed, sparsity 1 - k/E grows (see the file comment for the rule). */
export function fixedTotalVariants(base: Config, sparsities: readonly number[], expertParams?: number): GeneratedVariant[] {
  const f = baseMoe(base, 'fixed-total');
  const d = base.model.d;
  const counts = countModel(base.model);
  const moeLayers = counts.perLayer.filter((l) => l.kind === 'moe').length;
  const B = expertParams ?? counts.expertParamsTotal;
  const k = f.topk, G = f.granularity;
  return sparsities.map((S, i) => {
    const E = Math.round(k / (1 - S));
    const perLayer = B / moeLayers;
    const h = G * Math.round((perLayer / E - G * d) / ((2 * d + 1) * G));
    if (h < G) {
      throw new ConfigError(`generator.sparsities[${i}]: sparsity ${S} needs ${E} experts, and ${B} expert parameters over ${moeLayers} MoE layer(s) ` +
        `leave them no hidden width (each expert needs at least ${expertParamsPerLayer(d, 1, G, G)} parameters at d ${d}); raise generator.expertParams or lower the sparsity`);
    }
    const realised = 1 - k / E;
    return {
      overrides: { 'model.ffn.experts': E, 'model.ffn.expertHidden': h },
      values: { sparsity: realised, requestedSparsity: S, experts: E, expertHidden: h, expertParams: moeLayers * expertParamsPerLayer(d, E, h, G) },
    };
  });
}

/** The variants a spec's generator gives for one base (already resolved with the point's axes). */
export function generatorVariants(g: SweepGenerator, base: Config): GeneratedVariant[] {
  return g.kind === 'fixed-active' ? fixedActiveVariants(base, g.experts) : fixedTotalVariants(base, g.sparsities, g.expertParams);
}
