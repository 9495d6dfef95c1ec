import type { Command } from 'commander';
import { PRESETS, DEFAULT_PRESET } from '../index.js';

export function registerPresets(program: Command): void {
  program
    .command('presets')
    .description('list the named presets')
    .action(() => {
      const w = Math.max(...Object.keys(PRESETS).map((n) => n.length));
      for (const [name, p] of Object.entries(PRESETS)) {
        process.stdout.write(`${name.padEnd(w)}  ${p.description}${name === DEFAULT_PRESET ? ' (default)' : ''}\n`);
      }
    });
}
