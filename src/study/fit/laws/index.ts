// The laws `moelab fit --law` knows, in one list.
import type { Law } from '../law.js';
import { chinchilla } from './chinchilla.js';
import { abnar } from './abnar.js';
import { power } from './power.js';

export const LAWS: readonly Law[] = [chinchilla, abnar, power];

export function lawNames(): string[] {
  return LAWS.map((l) => l.name);
}

export function getLaw(name: string): Law {
  const law = LAWS.find((l) => l.name === name);
  if (!law) throw new Error(`unknown law '${name}': choose one of ${lawNames().join(', ')}`);
  return law;
}
