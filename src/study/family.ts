// The model family a point belongs to, for grouping runs in comparisons and plots: one label per
// feed-forward design, independent of the model's size.
//   dense             dense MLP everywhere
//   moe-E<E>-k<k>     MoE with E experts, top-k (the configured, coarse sizes), with -G<g> for
//                     granularity g > 1 and -sh<n> for n shared experts
//   peer | pkm        PEER, or its values-only product-key memory variant
import type { Config } from '../config/schema.js';

export function familyOf(cfg: Config): string {
  const f = cfg.model.ffn;
  switch (f.type) {
    case 'dense':
      return 'dense';
    case 'moe':
      return `moe-E${f.experts}-k${f.topk}${f.granularity > 1 ? `-G${f.granularity}` : ''}${f.sharedExperts > 0 ? `-sh${f.sharedExperts}` : ''}`;
    case 'peer':
      return f.pkm ? 'pkm' : 'peer';
  }
}

/** Whether a family is the dense baseline of a compute-matched comparison. */
export const isDenseFamily = (family: string): boolean => family === 'dense';
