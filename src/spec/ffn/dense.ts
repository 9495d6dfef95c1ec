// Dense feed-forward: x -> fc2(gelu(fc1(x))), d -> hidden -> d, in every layer. It is also the block
// of the layers another kind leaves out (hidden 4d there).
import { z } from 'zod';
import { posInt, inSchemaOrder } from '../../config/fields.js';
import { mlpTensors, type FfnKind } from './kind.js';

const schema = z
  .object({
    type: z.literal('dense'),
    /** MLP hidden width (default 4*d). */
    hidden: posInt.optional(),
  })
  .strict();

export interface DenseFfnConfig {
  type: 'dense';
  hidden: number;
}

export interface DenseFfnSpec {
  kind: 'dense';
  hidden: number;
}

/** The dense block of width `hidden`. */
export const denseLayer = (hidden: number): DenseFfnSpec => ({ kind: 'dense', hidden });

export const denseKind: FfnKind<typeof schema, DenseFfnConfig, DenseFfnSpec> = {
  type: 'dense',
  schema,
  derivable: ['hidden'],
  trainingOnly: [],
  check() {},
  resolve: (f, m) => inSchemaOrder<DenseFfnConfig>({ type: 'dense', hidden: f.hidden ?? 4 * m.d }, schema),
  inLayer: () => true,
  layer: (cfg) => denseLayer(cfg.hidden),
  parameters: (s, d) => mlpTensors('', d, s.hidden),
  buffers: () => [],
  expertActive: () => 0,
  macs: (s, d) => 2 * d * s.hidden,
  // fc1 output and its activation, fc2 output
  activationFloats: (s, d) => 2 * s.hidden + d,
  shrinkHint: (_s, m) => `a smaller model (model.d ${m.d}, model.layers ${m.layers}) or a shorter model.seq`,
};
