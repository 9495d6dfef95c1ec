// Memory advice for big tensors' storage (the only backend call outside ops, by design: it changes
// how pages are backed, never values).
import { backend } from '../backend/index.js';

/**
 * Asks the OS to back `a` with transparent huge pages (kernel peerAdviseHugePages) when it is at
 * least 4 MiB: multi-GiB expert tables, their optimizer moments and gradient-row buffers then take
 * far fewer page faults and TLB misses. Call it right after allocation, before the pages are
 * written. Contents are unchanged; returns whether the advice was taken (never on the reference).
 */
export function adviseHugePages(a: Float32Array | Uint16Array): boolean {
  return a.byteLength >= 4 << 20 && backend().peerAdviseHugePages(a);
}
