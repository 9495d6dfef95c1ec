#!/usr/bin/env node
// The child process of `moelab sweep --jobs N` (study/process_executor.ts): trains one job and
// writes its outcome. Usage: sweep_worker.js JOB.json OUTCOME.json. SIGTERM / SIGINT stop the run
// between steps with a checkpoint (the outcome then says 'stopped').
import { readFileSync, writeFileSync } from 'node:fs';
import { runJob, validateConfig, type SweepJob } from '../index.js';

const [jobFile, outFile] = process.argv.slice(2);
if (!jobFile || !outFile) {
  process.stderr.write('usage: sweep_worker.js JOB.json OUTCOME.json (started by `moelab sweep --jobs N`)\n');
  process.exit(2);
}
const raw = JSON.parse(readFileSync(jobFile, 'utf8')) as SweepJob;
const job: SweepJob = { hash: raw.hash, dir: raw.dir, config: validateConfig(raw.config, jobFile) };
const stop = new AbortController();
process.on('SIGTERM', () => stop.abort());
process.on('SIGINT', () => stop.abort());
const outcome = await runJob(job, stop.signal);
writeFileSync(outFile, JSON.stringify(outcome));
