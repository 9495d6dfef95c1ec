// Training-memory estimate, checked against the machine before a run starts. Read from the model
// spec; what is special about a feed-forward kind comes from its FfnKind (spec/ffn/*.ts).
//   parameters  fp32 (PEER tables bf16 when the kind says so: peer.bf16Tables), plus buffers
//               (BatchNorm statistics; int64 counters 8 bytes)
//   gradients   fp32 and dense, except the tensors with row-sparse gradients (the PEER expert
//               tables u, v): they hold the rows retrieved in one optimizer step (expected distinct
//               rows of accum*B*S*lookups draws from N) plus an int32 index per row; bf16 tables
//               keep factored gradients instead (per pick a coefficient and its index entries, plus
//               a copy of the [B*S, d] input or output gradient), formed into rows only when
//               accumulating several micro-batches
//   optimizer   AdamW first and second moments: fp32, or bf16 for the row-sparse tables when the
//               kind says so (peer.bf16Moments)
//   activations what backward keeps for one micro-batch of B*S tokens, layer by layer (see
//               layerActivationFloats), plus the logits, plus the largest single layer once more as
//               backward / forward scratch
//   runtime     a fixed allowance for Node, the native library and the corpus
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import type { ModelConfig, TrainConfig } from '../config/schema.js';
import { ffnKind } from './ffn/index.js';
import { specOf, type ModelSpec } from './model.js';
import { countModel, bufferList, sparseTables } from './count.js';

export interface MemoryOptions {
  /** Row-sparse gradients for the PEER u/v tables (default true). */
  peerSparseGrads?: boolean;
}

export interface MemoryEstimate {
  params: number;
  grads: number;
  optimizer: number;
  activations: number;
  runtime: number;
  total: number;
  /** How the estimate was made (for messages and suggestions). */
  detail: {
    paramCount: number;
    /** Parameters in tensors with row-sparse gradients (the PEER tables). */
    peerTableParams: number;
    tokensPerMicroBatch: number;
    peerGrads: 'row-sparse' | 'dense' | 'none';
    peerMoments: 'bf16' | 'fp32' | 'none';
    /** How the PEER tables themselves are stored. */
    peerTables: 'bf16' | 'fp32' | 'none';
  };
  spec: ModelSpec;
  train: Pick<TrainConfig, 'batch' | 'accum'>;
  options: MemoryOptions;
}

const F32 = 4;
const BF16 = 2;
/** Node + V8 heap + native library + corpus tokens, roughly. */
export const RUNTIME_BYTES = 384 * 2 ** 20;

/**
 * Floats per token that layer i keeps for backward (or needs transiently at its peak), in the
 * reference's formulation: LayerNorm inputs/outputs and statistics, qkv, attention probabilities
 * (h * S per token), attention output, and the feed-forward's intermediates (its kind's count).
 */
export function layerActivationFloats(model: ModelConfig | ModelSpec, i: number): number {
  const s = specOf(model);
  const { d, heads, seq } = s;
  const attn = d /* residual in */ + (d + 2) /* ln1 */ + 3 * d /* qkv */ + heads * seq /* probs */ + d /* attn out */ + d /* proj out */ + (d + 2); /* ln2 */
  const l = s.layers[i];
  if (!l) throw new RangeError(`layer ${i} out of range 0..${s.layers.length - 1}`);
  return attn + ffnKind(l.ffn.kind).activationFloats(l.ffn, d);
}

/** Expected number of distinct rows among m uniform draws from n. */
function expectedDistinct(n: number, m: number): number {
  return n * -Math.expm1(-m / n);
}

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export function estimateMemory(model: ModelConfig | ModelSpec, train: Pick<TrainConfig, 'batch' | 'accum'>, options: MemoryOptions = {}): MemoryEstimate {
  const spec = specOf(model);
  const sparse = options.peerSparseGrads !== false;
  const c = countModel(spec);
  const T = train.batch * spec.seq;
  let tableParams = 0;
  let tableGradBytes = 0;
  let tableMomentBytes = 0;
  let bf16TableParams = 0;
  const tables = sparseTables(spec);
  for (const t of tables) {
    const n = numel(t.shape);
    const N = t.shape[0];
    const rows = Math.min(N, Math.ceil(expectedDistinct(N, train.accum * T * t.lookupsPerToken)));
    tableParams += n;
    const d = n / N, picks = T * t.lookupsPerToken;
    const factored = t.bf16 && train.accum === 1;
    tableGradBytes += !sparse ? n * F32 : factored ? picks * (F32 + 4 + 4) + rows * 8 + T * d * F32 : rows * (d * F32 + 4);
    tableMomentBytes += n * 2 * (t.bf16Moments ? BF16 : F32);
    if (t.bf16) bf16TableParams += n;
  }
  const bf16Moments = tables.some((t) => t.bf16Moments);
  const bufferBytes = bufferList(spec).reduce((s, b) => s + numel(b.shape) * (b.dtype === 'I64' ? 8 : F32), 0);
  const params = (c.paramsTotal - bf16TableParams) * F32 + bf16TableParams * BF16 + bufferBytes;
  const grads = (c.paramsTotal - tableParams) * F32 + tableGradBytes;
  const optimizer = (c.paramsTotal - tableParams) * 2 * F32 + tableMomentBytes;
  let perLayer = 0;
  let largest = 0;
  for (let i = 0; i < spec.layers.length; i++) {
    const a = layerActivationFloats(spec, i);
    perLayer += a;
    largest = Math.max(largest, a);
  }
  const head = spec.d + 2 /* ln_f */ + 2 * spec.vocabSize; /* logits + softmax / dlogits */
  const activations = T * (perLayer + largest + head + spec.d /* embeddings */) * F32;
  const total = params + grads + optimizer + activations + RUNTIME_BYTES;
  return {
    params,
    grads,
    optimizer,
    activations,
    runtime: RUNTIME_BYTES,
    total,
    detail: {
      paramCount: c.paramsTotal,
      peerTableParams: tableParams,
      tokensPerMicroBatch: T,
      peerGrads: tableParams ? (sparse ? 'row-sparse' : 'dense') : 'none',
      peerMoments: tableParams ? (bf16Moments ? 'bf16' : 'fp32') : 'none',
      peerTables: tableParams ? (bf16TableParams ? 'bf16' : 'fp32') : 'none',
    },
    spec,
    train: { batch: train.batch, accum: train.accum },
    options,
  };
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

/** Memory a new process can use: /proc/meminfo MemAvailable, else 90% of total RAM. */
export function availableMemory(): { bytes: number; source: string } {
  try {
    const m = /^MemAvailable:\s+(\d+)\s*kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) return { bytes: Number(m[1]) * 1024, source: 'MemAvailable' };
  } catch {
    /* not Linux */
  }
  return { bytes: Math.floor(totalmem() * 0.9), source: '90% of total RAM' };
}

export function describeEstimate(e: MemoryEstimate): string {
  const d = e.detail;
  const parts = [
    `parameters ${formatBytes(e.params)} (${d.paramCount.toLocaleString('en-US')} fp32${d.peerTables === 'bf16' ? ', PEER tables bf16' : ''})`,
    `gradients ${formatBytes(e.grads)}${d.peerGrads === 'row-sparse' ? ' (PEER tables row-sparse)' : ''}`,
    `AdamW moments ${formatBytes(e.optimizer)}${d.peerMoments === 'bf16' ? ' (PEER tables in bf16)' : ''}`,
    `activations ${formatBytes(e.activations)} (${d.tokensPerMicroBatch.toLocaleString('en-US')} tokens per micro-batch)`,
    `runtime ${formatBytes(e.runtime)}`,
  ];
  return `estimated training memory ${formatBytes(e.total)}: ${parts.join(', ')}`;
}

/** A config refused because its training memory exceeds what the machine has (said before allocating). */
export class MemoryRefusedError extends Error {
  constructor(readonly fit: FitResult) {
    super(fit.message);
    this.name = 'MemoryRefusedError';
  }
}

export interface FitResult {
  fits: boolean;
  available: number;
  message: string;
  /** Config changes that would make the run fit, most effective first (empty if it fits). */
  suggestions: string[];
}

/**
 * Compare an estimate with the memory available (default: MemAvailable, else 90% of RAM). When it
 * does not fit, the message names the changes that would make it fit.
 */
export function checkFits(est: MemoryEstimate, availableBytes?: number): FitResult {
  const avail = availableBytes ?? availableMemory().bytes;
  const head = describeEstimate(est);
  if (est.total <= avail) return { fits: true, available: avail, message: `${head}; ${formatBytes(avail)} available`, suggestions: [] };
  const suggestions: string[] = [];
  const { spec, train, options } = est;
  // 1. the kinds' lighter variants (bf16 moments for the PEER tables, then bf16 tables)
  let m = spec;
  const lighter = spec.layers.map((l) => ffnKind(l.ffn.kind).lighter?.(l.ffn));
  const change = [...new Set(lighter.flatMap((x) => (x ? [x.change] : [])))].join(', ');
  if (change) {
    m = { ...spec, layers: spec.layers.map((l, i) => ({ ...l, ffn: lighter[i]?.layer ?? l.ffn })) };
    const e2 = estimateMemory(m, train, options);
    suggestions.push(`${change} (saves ${formatBytes(est.total - e2.total)}${e2.total <= avail ? ', then it fits' : ''})`);
    if (e2.total <= avail) return notFit();
  }
  // 2. row-sparse PEER gradients
  if (est.detail.peerTableParams && options.peerSparseGrads === false) {
    const e2 = estimateMemory(m, train, { ...options, peerSparseGrads: true });
    suggestions.push(`row-sparse PEER gradients (saves ${formatBytes(estimateMemory(m, train, options).total - e2.total)})`);
  }
  // 3. smaller micro-batches with accumulation (same tokens per optimizer step)
  for (let b = Math.floor(train.batch / 2); b >= 1; b = Math.floor(b / 2)) {
    const accum = Math.ceil((train.batch * train.accum) / b);
    const e2 = estimateMemory(m, { batch: b, accum }, options);
    if (e2.total <= avail) {
      const also = m !== spec ? ` together with ${change}` : '';
      suggestions.push(`train.batch: ${b} with train.accum: ${accum}${also} (same tokens per step; ${formatBytes(e2.total)})`);
      return notFit();
    }
    if (b === 1) break;
  }
  // 4. fewer experts / a smaller model: the advice of the sparse kinds present, else the dense one
  const sizes = { d: spec.d, layers: spec.layers.length, seq: spec.seq };
  const sparseLayers = spec.layers.filter((l) => l.ffn.kind !== 'dense');
  const hints = (sparseLayers.length ? sparseLayers : spec.layers.slice(0, 1)).map((l) => ffnKind(l.ffn.kind).shrinkHint(l.ffn, sizes));
  suggestions.push(...new Set(hints));
  return notFit();

  function notFit(): FitResult {
    return {
      fits: false,
      available: avail,
      message: `does not fit in memory: ${head}; only ${formatBytes(avail)} available. To fit, try: ${suggestions.join('; or ')}`,
      suggestions,
    };
  }
}
