/**
 * The router's decisions of one MoE forward as (token, expert) pairs, for tools that look at
 * routing (moelab inspect): read from the same route the layer dispatches with, so what is counted
 * is exactly what the layer did, in whichever routing is in effect (training or evaluation).
 */
import type { Route } from '../tensor/index.js';
import type { MoeRouting } from '../spec/ffn/moe.js';

export interface RoutingChoices {
  /** Tokens: rows of the layer's input [T, d] (a GPT's row b*S + s is sequence b, position s). */
  T: number;
  /** Routed experts. */
  E: number;
  /** The routing that decided (the training routing, or the evaluation routing in eval mode). */
  routing: MoeRouting;
  /** Token and expert of every assignment the router made, before capacity drops. [A] each. */
  tok: Int32Array;
  expert: Int32Array;
}

/** Receives each forward's choices; it must not keep or modify the arrays past the call. */
export type RoutingObserver = (c: RoutingChoices) => void;

/**
 * The assignments of a route: token choice and uniform (idx = the T*k choices, slot s = t*k + j:
 * token s / k, expert idx[s], including slots capacity dropped); expert choice (idx null: expert e's
 * slots [offsets[e], offsets[e+1]) hold its chosen tokens, none dropped).
 */
export function routingChoices(route: Route, idx: Int32Array | null, k: number, routing: MoeRouting): RoutingChoices {
  const { T, E } = route;
  if (idx) {
    const tok = new Int32Array(idx.length);
    for (let s = 0; s < idx.length; s++) tok[s] = (s / k) | 0;
    return { T, E, routing, tok, expert: idx };
  }
  const expert = new Int32Array(route.tok.length);
  for (let e = 0; e < E; e++) expert.fill(e, route.offsets[e], route.offsets[e + 1]);
  return { T, E, routing, tok: route.tok, expert };
}
