// The laws `moelab fit --law` knows, in one list.
import type { Law } from '../law.js';
import { chinchilla } from './chinchilla.js';
import { abnar } from './abnar.js';
import { power } from './power.js';
import { readLawFile } from './user.js';

export const LAWS: readonly Law[] = [chinchilla, abnar, power];

export function lawNames(): string[] {
  return LAWS.map((l) => l.name);
}

export function getLaw(name: string): Law {
  const law = LAWS.find((l) => l.name === name);
  if (!law) throw new Error(`unknown law '${name}': choose one of ${lawNames().join(', ')}, or a law file ending in .json`);
  return law;
}

/** A built-in law by name, or a user law from a JSON file (a path ending in .json; see user.ts). */
export function resolveLaw(nameOrFile: string): Law {
  if (LAWS.some((l) => l.name === nameOrFile) || !nameOrFile.endsWith('.json')) return getLaw(nameOrFile);
  const law = readLawFile(nameOrFile);
  // Tables and plots specific to a built-in law key on its name.
  if (LAWS.some((l) => l.name === law.name)) throw new Error(`${nameOrFile}: name '${law.name}' is a built-in law; give the file's law another name`);
  return law;
}
