import type { Command } from 'commander';
import { basename, join, relative } from 'node:path';
import { closeSync, openSync, writeSync } from 'node:fs';
import {
  openRun, evaluateDomains, resolveSuite, fileDomains, readRunDataIdentity, writeRunResult, writeResultFile, resolveTasks, evaluateTask,
  EVAL_DEFINITION, BUILTIN_TASK_NAMES, sotuPartyLeak, appendEvalLines, domainsLine, taskLine, type EvalLine, type Domain, type DomainResult, type TaskResult, type SampleRecord,
} from '../index.js';
import { collect, positiveInt, intOption } from './common.js';
import { domainTable, taskTable } from './eval_format.js';

const HELP = `
Perplexity: ${EVAL_DEFINITION}
A suite JSON file: {"domains": {"name": "path" or ["path", ...]}} (paths relative to the file).

Tasks: a JSONL file, one item per line: {"context": str, "choices": [str, ...], "gold": int, "split"?: "train"|"test"}
(train items are the shot pool), or a built-in task: ${BUILTIN_TASK_NAMES.join(', ')}
(fortune-topic reads Debian's fortunes from /usr/share/games/fortunes or $MOELAB_FORTUNES_DIR; skipped with a notice when absent).
Prompt: shots joined by the few-shot delimiter, each "context<td>gold choice"; choices scored as "<td>choice".

Results are written atomically to <run>/eval/ (domains.json, task-<name>-<K>shot.json), and one line per result
is appended to <run>/metrics.jsonl (type eval_domains / eval_task) while holding the run's lock; if a trainer holds
it, the line is skipped with a notice. Nothing else in a run is written; --out FILE or --no-save write nothing there.`;

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('evaluate a trained run: domain perplexity (nats/token, perplexity, bits per byte) and zero/few-shot multiple-choice tasks')
    .requiredOption('-r, --run <dir>', 'run directory with a checkpoint')
    .option('-d, --data <file>', 'text file or folder to evaluate, its own domain (repeatable)', collect)
    .option('-s, --suite <name|file>', "'domains' (built in: in-domain held-out split, fiction, brown, licences, udhr, typescript) or a suite JSON file")
    .option('--stride <n>', 'sliding-window perplexity: each window predicts only its last n tokens (1..seq)', positiveInt('--stride'))
    .option('-b, --batch <n>', 'perplexity windows per forward pass', positiveInt('--batch'), 8)
    .option('-t, --task <file|name>', 'multiple-choice task: a JSONL file or a built-in name (repeatable)', collect)
    .option('-k, --shots <n>', 'few-shot examples per prompt', intOption('--shots'), 0)
    .option('--trials <n>', 'resampled shot sets (default 25 with --shots > 0, else 1)', positiveInt('--trials'))
    .option('--seed <n>', 'seed of the shot draws', intOption('--seed'), 1234)
    .option('--target-delimiter <s>', 'between a context and its answer', ' ')
    .option('--fewshot-delimiter <s>', 'between shots (escapes \\n and \\t understood)', '\\n\\n')
    .option('--limit <n>', 'only the first n test items of each task', positiveInt('--limit'))
    .option('--batch-tokens <n>', 'rows x length of one scoring forward (default 4096 per-choice rows, 1024 shared-context batches)', positiveInt('--batch-tokens'))
    .option('--no-kv-cache', 'score every choice as its own full row, cut per choice as lm-evaluation-harness does (no shared context)')
    .option('--log-samples <file>', 'one JSON line per scored item: context, continuations, log-likelihoods, gold, prediction')
    .option('--out <file>', 'write all results as one JSON file here instead of <run>/eval/')
    .option('--no-save', 'do not write result files')
    .option('--json', 'print results as JSON lines instead of tables')
    .addHelpText('after', HELP)
    .action((o) => {
      const onNotice = (m: string): void => void process.stderr.write(`moelab: ${m}\n`);
      const domains: Domain[] = [];
      if (o.suite) domains.push(...resolveSuite(o.suite));
      if (o.data) domains.push(...fileDomains(o.data));
      const asked = (o.task as string[] | undefined) ?? [];
      const tasks = resolveTasks(asked, onNotice);
      if (!domains.length && !tasks.length) {
        if (asked.length) return onNotice('nothing left to evaluate: every task given was skipped');
        throw new Error('nothing to evaluate: give --suite domains, --suite FILE, --data FILE and/or --task FILE|NAME');
      }
      const { model, tokenizer, config, step } = openRun(o.run);
      const leak = tasks.some((t) => t.source.startsWith('built-in sotu-party')) ? sotuPartyLeak(config.data) : null;
      if (leak) onNotice(leak);
      const unescape = (s: string): string => s.replace(/\\n/g, '\n').replace(/\\t/g, '\t');
      const createdAt = new Date().toISOString();

      let rows: DomainResult[] = [];
      if (domains.length) {
        rows = evaluateDomains(model, tokenizer, domains, { config, runData: readRunDataIdentity(o.run), onNotice }, { batch: o.batch, stride: o.stride });
        if (o.json) for (const r of rows) process.stdout.write(JSON.stringify({ type: 'domain', ...r }) + '\n');
        else process.stdout.write(domainTable(rows) + (tasks.length ? '\n' : ''));
      }

      const results: TaskResult[] = [];
      const log = o.logSamples ? openSync(o.logSamples, 'w') : null;
      try {
        for (const task of tasks) {
          const r = evaluateTask(model, tokenizer, task, {
            shots: o.shots, trials: o.trials, seed: o.seed, limit: o.limit, batchTokens: o.batchTokens, kvCache: o.kvCache,
            targetDelimiter: unescape(o.targetDelimiter), fewshotDelimiter: unescape(o.fewshotDelimiter), onNotice,
            onSample: log === null ? undefined : (s: SampleRecord) => void writeSync(log, JSON.stringify(s) + '\n'),
          });
          results.push(r);
          if (r.truncated) onNotice(`${task.name}: ${r.truncated} of ${r.items * r.trials} prompts were longer than the model's context of ${model.shape.seq} tokens and were cut from the left`);
          onNotice(`${task.name}: ${r.items} items x ${r.trials} trials in ${r.seconds.toFixed(1)} s (${r.itemsPerSecond.toFixed(1)} items/s)`);
          if (o.json) process.stdout.write(JSON.stringify({ type: 'task', ...r }) + '\n');
        }
      } finally {
        if (log !== null) closeSync(log);
      }
      if (results.length && !o.json) process.stdout.write(taskTable(results));

      if (o.save === false) return;
      const common = { run: o.run, createdAt, definition: EVAL_DEFINITION };
      const domainRecord = { kind: 'domains', step, suite: o.suite ?? null, data: o.data ?? [], stride: o.stride ?? null, ...common, results: rows };
      const written: string[] = [];
      let appended = '';
      if (o.out) {
        written.push(writeResultFile(o.out, { ...common, domains: rows.length ? domainRecord : null, tasks: results }));
      } else {
        const lines: EvalLine[] = [];
        if (rows.length) {
          const which = o.suite ? (o.suite === 'domains' ? 'domains' : `suite-${basename(o.suite).replace(/\.json$/, '')}`) : 'data';
          const file = writeRunResult(o.run, `${which}${o.stride ? `-stride${o.stride}` : ''}`, domainRecord);
          written.push(file);
          lines.push(domainsLine(step, relative(o.run, file), o.suite ?? null, o.stride ?? null, rows, createdAt));
        }
        for (const r of results) {
          const file = writeRunResult(o.run, `task-${r.task}-${r.shots}shot`, { kind: 'task', step, ...common, ...r });
          written.push(file);
          lines.push(taskLine(step, relative(o.run, file), r, createdAt));
        }
        const skipped = appendEvalLines(o.run, lines);
        if (skipped) onNotice(`no eval line added to metrics.jsonl: ${skipped}`);
        else appended = `; ${lines.length} line(s) appended to ${join(o.run, 'metrics.jsonl')}`;
      }
      onNotice(`results written to ${written.join(', ')}${appended}`);
    });
}
