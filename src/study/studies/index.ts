// The predefined studies `moelab study NAME` runs.
import type { StudyDefinition } from './design.js';
import { moeVsDense } from './moe_vs_dense.js';
import { sparsityStudy } from './sparsity.js';
import { peerIsoflop } from './peer_isoflop.js';

export const STUDIES: readonly StudyDefinition[] = [moeVsDense, sparsityStudy, peerIsoflop];

export function studyNames(): string[] {
  return STUDIES.map((s) => s.name);
}

export function getStudy(name: string): StudyDefinition {
  const s = STUDIES.find((x) => x.name === name);
  if (!s) throw new Error(`unknown study '${name}': choose one of ${studyNames().join(', ')}`);
  return s;
}
