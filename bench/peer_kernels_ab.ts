/**
 * Before/after A/B of the PEER kernels of two native addon builds on the calls of a real training
 * step (a ratio, not a benchmark): a few steps of a PEER preset run on the `before` addon while its
 * PEER kernel calls are recorded (arguments copied); the last step's calls are then replayed on
 * both addons, alternating, `rounds` times. Prints, per kernel, the median time per step of each
 * side and before/after, and whether every output of the two sides agreed bit for bit.
 *
 *   node dist/bench/peer_kernels_ab.js OLD.node build/Release/moelab.node [preset] [corpus] [rounds]
 */
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { buildTraining, getTokenizer, loadConfig, loadCorpus, trainStep } from '../src/index.js';
import { BatchSampler, splitTokens } from '../src/data/loader.js';
import { trainingSide } from './training_side.js';
import { kernelsFromAddon, setBackend, type Kernels } from '../src/backend/index.js';

const [beforePath, afterPath, preset = 'peer65k-d256', corpus = '', roundsArg = '9'] = process.argv.slice(2);
if (!beforePath || !afterPath) throw new Error('usage: peer_kernels_ab.js BEFORE.node AFTER.node [preset] [corpus|""] [rounds]');
const rounds = Number(roundsArg), steps = 12; // routing concentrates over the first steps on real text
const require = createRequire(import.meta.url);
const load = (p: string) => kernelsFromAddon(require(resolve(p)) as Record<string, unknown>, p);
const sides = { before: load(beforePath), after: load(afterPath) };
const threads = Number(process.env.AB_THREADS ?? 2);
for (const k of Object.values(sides)) k.setThreads(threads);

const KERNELS = ['peerRetrieve', 'peerForward', 'peerBackwardRows', 'peerBackward', 'peerRetrieveBackward', 'peerCoalesce', 'peerRowGrad', 'sparseAdam'] as const;
type Name = (typeof KERNELS)[number];
type Call = { name: Name; args: unknown[] };
const calls: Call[] = [];
let recordOn = false;
const copy = (a: unknown) => (ArrayBuffer.isView(a) ? (a as Float32Array).slice() : a);
const recording: Kernels = { ...sides.before };
for (const name of KERNELS) {
  const f = sides.before[name] as (...a: unknown[]) => unknown;
  (recording as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
    if (recordOn) calls.push({ name, args: args.map(copy) });
    return f(...args);
  };
}
setBackend(recording);
const cfg = loadConfig({ preset, overrides: { 'train.threads': threads } });
const stepOnce = corpus ? corpusSide() : trainingSide(cfg);
for (let i = 0; i < steps; i++) {
  recordOn = i === steps - 1;
  stepOnce();
}
const last = calls;

function corpusSide(): () => void {
  const { model, optimizer } = buildTraining(cfg);
  const tokens = loadCorpus([corpus], getTokenizer(cfg.model.vocab)).tokens;
  const sampler = new BatchSampler(splitTokens(tokens, cfg.data.valFraction).train, cfg.train.batch, cfg.model.seq, cfg.train.seed);
  let it = 0;
  return () => { trainStep({ model, optimizer, train: cfg.train, nextBatch: () => sampler.next() }, it++); };
}
setBackend(sides.before);

type Out = unknown[];
// The check copies every argument, so both sides start from the recorded state (some outputs
// accumulate, sparseAdam updates in place); the timed replays reuse the recorded arrays, since
// copying multi-MiB tables before each call would time page faults and cold caches instead.
function run(k: Kernels, c: Call, args: unknown[]): number {
  const f = k[c.name] as (...a: unknown[]) => unknown;
  const t = performance.now();
  f(...args);
  return performance.now() - t;
}
const bytes = (x: ArrayBufferView) => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
const same = (a: Out, b: Out) => a.every((x, i) => {
  if (!ArrayBuffer.isView(x)) return x === b[i];
  const u = bytes(x), v = bytes(b[i] as ArrayBufferView);
  return u.length === v.length && u.every((q, j) => q === v[j]);
});
const identical = new Map<Name, boolean>();
for (const c of last) {
  const outs = (['before', 'after'] as const).map((s) => { const a = c.args.map(copy); run(sides[s], c, a); return a; });
  identical.set(c.name, (identical.get(c.name) ?? true) && same(outs[0], outs[1]));
}
const times: Record<'before' | 'after', Map<Name, number[]>> = { before: new Map(), after: new Map() };
for (let r = 0; r < rounds; r++) {
  const order = r % 2 ? (['after', 'before'] as const) : (['before', 'after'] as const);
  for (const s of order) {
    const perStep = new Map<Name, number>();
    for (const c of last) perStep.set(c.name, (perStep.get(c.name) ?? 0) + run(sides[s], c, c.args));
    for (const [n, ms] of perStep) (times[s].get(n) ?? times[s].set(n, []).get(n)!).push(ms);
  }
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const rows = Object.fromEntries([...times.before.keys()].map((n) => {
  const b = med(times.before.get(n)!), a = med(times.after.get(n)!);
  return [n, { beforeMs: +b.toFixed(2), afterMs: +a.toFixed(2), beforeOverAfter: +(b / a).toFixed(3), identical: identical.get(n) }];
}));
const tb = [...times.before.values()].reduce((s, x) => s + med(x), 0), ta = [...times.after.values()].reduce((s, x) => s + med(x), 0);
console.log(JSON.stringify({ preset, corpus: corpus || null, rounds, callsPerStep: last.length, kernels: rows,
  totalBeforeMs: +tb.toFixed(1), totalAfterMs: +ta.toFixed(1), beforeOverAfter: +(tb / ta).toFixed(3) }, null, 1));
