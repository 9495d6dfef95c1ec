import type { Command } from 'commander';
import { startDashboard } from '../index.js';
import { intOption } from './common.js';

export function registerDashboard(program: Command): void {
  program
    .command('dashboard')
    .description('a live web page over a runs folder: runs table, loss curves, MoE/PEER routing, eval and sweep tables (read-only)')
    .option('-r, --runs <dir>', 'folder holding run folders (searched recursively)', 'runs')
    .option('--port <n>', 'port to listen on (0: any free port)', intOption('--port'), 8080)
    .option('--host <addr>', 'address to bind; anything but 127.0.0.1/localhost exposes your runs to the network', '127.0.0.1')
    .action(async (o) => {
      const d = await startDashboard({ runs: o.runs, port: o.port, host: o.host, log: (m) => process.stderr.write(m + '\n') });
      process.stdout.write(`moelab dashboard on ${d.url} (runs: ${o.runs}); Ctrl-C to stop\n`);
      if (d.host !== '127.0.0.1' && d.host !== '::1') process.stderr.write(`warning: listening on ${d.host}: anyone who can reach this machine can read your runs\n`);
      const stop = () => void d.close().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
