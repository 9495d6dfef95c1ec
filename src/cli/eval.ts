import type { Command } from 'commander';
import { basename } from 'node:path';
import {
  openRun, evaluateDomains, resolveSuite, fileDomains, readRunDataIdentity, writeRunResult, writeResultFile,
  EVAL_DEFINITION, type Domain,
} from '../index.js';
import { collect, positiveInt } from './common.js';
import { domainTable } from './eval_format.js';

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('perplexity of a trained run on domains and text files (nats/token, perplexity, bits per byte)')
    .requiredOption('-r, --run <dir>', 'run directory with a checkpoint')
    .option('-d, --data <file>', 'text file or folder to evaluate, its own domain (repeatable)', collect)
    .option('-s, --suite <name|file>', "'domains' (built in: in-domain held-out split, fiction, brown, licences) or a suite JSON file")
    .option('--stride <n>', 'sliding-window scoring: each window predicts only its last n tokens (1..seq)', positiveInt('--stride'))
    .option('-b, --batch <n>', 'windows per forward pass', positiveInt('--batch'), 8)
    .option('--out <file>', 'write the results JSON here instead of <run>/eval/')
    .option('--no-save', 'do not write a results file')
    .option('--json', 'print the results as JSON (one object per domain per line)')
    .addHelpText('after', `\nDefinition: ${EVAL_DEFINITION}\nA suite JSON file: {"domains": {"name": "path" or ["path", ...]}} (paths relative to the file).\nResults are written atomically to <run>/eval/domains.json (suite-<file>.json, data.json; -stride<n> with --stride) (the only file eval writes in a run).`)
    .action((o) => {
      const domains: Domain[] = [];
      if (o.suite) domains.push(...resolveSuite(o.suite));
      if (o.data) domains.push(...fileDomains(o.data));
      if (!domains.length) throw new Error('nothing to evaluate: give --suite domains, --suite FILE and/or --data FILE');
      const { model, tokenizer, config } = openRun(o.run);
      const onNotice = (m: string): void => void process.stderr.write(`moelab: ${m}\n`);
      const rows = evaluateDomains(model, tokenizer, domains, { config, runData: readRunDataIdentity(o.run), onNotice }, { batch: o.batch, stride: o.stride });
      if (o.json) for (const r of rows) process.stdout.write(JSON.stringify(r) + '\n');
      else process.stdout.write(domainTable(rows));
      if (o.save !== false) {
        const result = { kind: 'domains', suite: o.suite ?? null, data: o.data ?? [], stride: o.stride ?? null, definition: EVAL_DEFINITION, createdAt: new Date().toISOString(), results: rows };
        const which = o.suite ? (o.suite === 'domains' ? 'domains' : `suite-${basename(o.suite).replace(/\.json$/, '')}`) : 'data';
        const name = `${which}${o.stride ? `-stride${o.stride}` : ''}`;
        const path = o.out ? writeResultFile(o.out, result) : writeRunResult(o.run, name, result);
        process.stderr.write(`moelab: results written to ${path}\n`);
      }
    });
}
