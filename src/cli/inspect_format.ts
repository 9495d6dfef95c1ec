// Terminal tables of a routing inspection: per MoE layer a summary line and one row per expert
// (load share, utilisation, bias, top tokens); per PEER layer coverage and KL, per head.
import type { RunInspection, MoeLayerInspection, PeerLayerInspection, TokenPreference } from '../index.js';
import { table } from './eval_format.js';

const f3 = (x: number): string => x.toFixed(3);

function tokens(list: TokenPreference[]): string {
  return list.map((t) => `"${t.text}" ${t.count} (${(100 * t.share).toFixed(0)}%)`).join('  ');
}

function moeLayer(l: MoeLayerInspection, top: number): string {
  const head = `layer ${l.layer}: MoE, ${l.experts} experts, top-${l.topk}, ${l.gate} gate, ${l.routing} routing (evaluation), ` +
    `${l.tokens} tokens, ${l.assignments} assignments\n`;
  const dead = l.deadExperts ? `${l.deadExperts} (${l.dead.join(', ')})` : '0';
  let summary = `  dead experts ${dead}; imbalance (max/mean load) ${f3(l.imbalance)}; drop rate ${f3(l.dropRate)}; ` +
    `unrouted tokens ${f3(l.unroutedTokens)}; router entropy ${f3(l.routerEntropy)} nats (max ${f3(l.maxRouterEntropy)})\n`;
  if (l.bias) summary += `  balancing bias: min ${l.bias.min.toExponential(2)}, max ${l.bias.max.toExponential(2)}, mean ${l.bias.mean.toExponential(2)}, std ${l.bias.std.toExponential(2)}\n`;
  const withBias = l.bias !== null;
  const cols = ['expert', 'load', 'utilisation', ...(withBias ? ['bias'] : []), 'assignments', ...(top ? [`top tokens: "text" count (share of the token's occurrences)`] : [])];
  const rows = l.perExpert.map((x) => [
    String(x.expert), f3(x.load), x.utilisation === 0 ? '0 (dead)' : f3(x.utilisation), ...(withBias ? [x.bias!.toExponential(2)] : []),
    String(x.assignments), ...(top ? [tokens(x.topTokens)] : []),
  ]);
  return head + summary + table(cols, rows, cols.map((c, i) => i > 0 && i < cols.length - (top ? 1 : 0)));
}

function peerLayer(l: PeerLayerInspection): string {
  const head = `layer ${l.layer}: PEER, N = ${l.experts} experts, ${l.heads} heads x top-${l.k}, ${l.retrievals} retrievals\n` +
    `  experts used ${f3(l.usedFraction)} (${l.uniqueExperts} of ${l.experts}); KL(usage || uniform) ${f3(l.usageKL)} nats ` +
    `(0 = even, max ln N = ${f3(Math.log(l.experts))}); evenness ${f3(l.usageEvenness)}\n`;
  return head + table(['head', 'experts used', 'KL (nats)'], l.perHead.map((h) => [String(h.head), f3(h.usedFraction), f3(h.usageKL)]), [false, true, true]);
}

export function inspectionText(r: RunInspection, top: number): string {
  const src = r.source.kind === 'validation' ? `${r.batches} validation batches` : `${r.batches} batches of ${r.source.files.join(', ')}`;
  const parts = [`${r.name}: ${src} (${r.tokens} tokens, batch ${r.source.batch} x seq ${r.source.seq})\n`];
  for (const l of r.layers) {
    if (l.kind === 'moe') parts.push(moeLayer(l, top));
    else if (l.kind === 'peer') parts.push(peerLayer(l));
    else parts.push(`layer ${l.layer}: dense (no routing)\n`);
  }
  return parts.join('\n');
}
