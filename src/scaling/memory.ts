// Training-memory estimate, checked against the machine before a run starts.
//   parameters  fp32, plus BatchNorm buffers
//   gradients   fp32 and dense, except the PEER expert tables (u, v): row-sparse, holding the rows
//               retrieved in one optimizer step (expected distinct rows of accum*B*S*h*k draws
//               from N) plus an int32 index per row
//   optimizer   AdamW first and second moments: fp32, or bf16 for the PEER tables with
//               peer.bf16Moments
//   activations what backward keeps for one micro-batch of B*S tokens, layer by layer (see
//               layerActivationFloats), plus the logits, plus the largest single layer once more as
//               backward / forward scratch
//   runtime     a fixed allowance for Node, the native library and the corpus
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { denseHidden, effectiveMoe, ffnKindOfLayer, vocabSize, type ModelConfig, type TrainConfig } from '../config/schema.js';
import { countModel } from './count.js';

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
    peerTableParams: number;
    tokensPerMicroBatch: number;
    peerGrads: 'row-sparse' | 'dense' | 'none';
    peerMoments: 'bf16' | 'fp32' | 'none';
  };
  model: ModelConfig;
  train: Pick<TrainConfig, 'batch' | 'accum'>;
  options: MemoryOptions;
}

const F32 = 4;
const BF16 = 2;
/** Node + V8 heap + native library + corpus tokens, roughly. */
export const RUNTIME_BYTES = 384 * 2 ** 20;

/**
 * Floats per token that one layer keeps for backward (or needs transiently at its peak), in the
 * reference's formulation: LayerNorm inputs/outputs and statistics, qkv, attention probabilities
 * (h * S per token), attention output, and the feed-forward intermediates.
 */
export function layerActivationFloats(model: ModelConfig, i: number): number {
  const { d, heads, seq } = model;
  const attn = d /* residual in */ + (d + 2) /* ln1 */ + 3 * d /* qkv */ + heads * seq /* probs */ + d /* attn out */ + d /* proj out */ + (d + 2); /* ln2 */
  const kind = ffnKindOfLayer(model, i);
  const f = model.ffn;
  let ffn: number;
  if (kind === 'moe' && f.type === 'moe') {
    const e = effectiveMoe(f);
    // router logits + probs, gathered inputs, expert hidden pre/post activation, expert outputs, shared experts
    ffn = 2 * e.experts + e.topk * (d + 2 * e.hidden + d) + e.shared * (2 * e.hidden + d) + d;
  } else if (kind === 'peer' && f.type === 'peer') {
    const hk = f.heads * f.k;
    // query (+ normalised query), two sub-key score tables per head, k*k candidate sums, top-k
    // scores / gates / ids, u.x and its activation, output
    ffn = f.heads * f.dKey * (f.bn ? 2 : 1) + 2 * f.heads * f.nSub + f.heads * f.k * f.k + 3 * hk + 2 * hk + d;
  } else {
    const h = denseHidden(model);
    ffn = 2 * h + d;
  }
  return attn + ffn;
}

/** Expected number of distinct rows among m uniform draws from n. */
function expectedDistinct(n: number, m: number): number {
  return n * -Math.expm1(-m / n);
}

export function estimateMemory(model: ModelConfig, train: Pick<TrainConfig, 'batch' | 'accum'>, options: MemoryOptions = {}): MemoryEstimate {
  const sparse = options.peerSparseGrads !== false;
  const c = countModel(model);
  const T = train.batch * model.seq;
  const f = model.ffn;
  let peerTableParams = 0;
  let peerGradBytes = 0;
  if (f.type === 'peer') {
    const N = f.nSub * f.nSub;
    const tables = f.pkm ? 1 : 2;
    for (let i = 0; i < model.layers; i++) {
      if (ffnKindOfLayer(model, i) !== 'peer') continue;
      peerTableParams += tables * N * model.d;
      const rows = Math.min(N, Math.ceil(expectedDistinct(N, train.accum * T * f.heads * f.k)));
      peerGradBytes += sparse ? tables * rows * (model.d * F32 + 4) : tables * N * model.d * F32;
    }
  }
  let bufferFloats = 0;
  if (f.type === 'peer' && f.bn) bufferFloats = c.perLayer.filter((l) => l.kind === 'peer').length * (2 * f.heads * f.dKey + 2);
  const params = (c.paramsTotal + bufferFloats) * F32;
  const grads = (c.paramsTotal - peerTableParams) * F32 + peerGradBytes;
  const peerMoments = f.type === 'peer' && f.bf16Moments ? BF16 : F32;
  const optimizer = (c.paramsTotal - peerTableParams) * 2 * F32 + peerTableParams * 2 * peerMoments;
  let perLayer = 0;
  let largest = 0;
  for (let i = 0; i < model.layers; i++) {
    const a = layerActivationFloats(model, i);
    perLayer += a;
    largest = Math.max(largest, a);
  }
  const V = vocabSize(model);
  const head = model.d + 2 /* ln_f */ + 2 * V; /* logits + softmax / dlogits */
  const activations = T * (perLayer + largest + head + model.d /* embeddings */) * F32;
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
      peerTableParams,
      tokensPerMicroBatch: T,
      peerGrads: peerTableParams ? (sparse ? 'row-sparse' : 'dense') : 'none',
      peerMoments: peerTableParams ? (peerMoments === BF16 ? 'bf16' : 'fp32') : 'none',
    },
    model,
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
    `parameters ${formatBytes(e.params)} (${d.paramCount.toLocaleString('en-US')} fp32)`,
    `gradients ${formatBytes(e.grads)}${d.peerGrads === 'row-sparse' ? ' (PEER tables row-sparse)' : ''}`,
    `AdamW moments ${formatBytes(e.optimizer)}${d.peerMoments === 'bf16' ? ' (PEER tables in bf16)' : ''}`,
    `activations ${formatBytes(e.activations)} (${d.tokensPerMicroBatch.toLocaleString('en-US')} tokens per micro-batch)`,
    `runtime ${formatBytes(e.runtime)}`,
  ];
  return `estimated training memory ${formatBytes(e.total)}: ${parts.join(', ')}`;
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
  const { model, train, options } = est;
  const f = model.ffn;
  // 1. bf16 moments for the PEER tables
  let m = model;
  if (f.type === 'peer' && !f.bf16Moments) {
    m = { ...model, ffn: { ...f, bf16Moments: true } };
    const e2 = estimateMemory(m, train, options);
    suggestions.push(`model.ffn.bf16Moments: true (saves ${formatBytes(est.total - e2.total)}${e2.total <= avail ? ', then it fits' : ''})`);
    if (e2.total <= avail) return notFit();
  }
  // 2. row-sparse PEER gradients
  if (f.type === 'peer' && options.peerSparseGrads === false) {
    const e2 = estimateMemory(m, train, { ...options, peerSparseGrads: true });
    suggestions.push(`row-sparse PEER gradients (saves ${formatBytes(estimateMemory(m, train, options).total - e2.total)})`);
  }
  // 3. smaller micro-batches with accumulation (same tokens per optimizer step)
  for (let b = Math.floor(train.batch / 2); b >= 1; b = Math.floor(b / 2)) {
    const accum = Math.ceil((train.batch * train.accum) / b);
    const e2 = estimateMemory(m, { batch: b, accum }, options);
    if (e2.total <= avail) {
      const also = m !== model ? ' together with model.ffn.bf16Moments: true' : '';
      suggestions.push(`train.batch: ${b} with train.accum: ${accum}${also} (same tokens per step; ${formatBytes(e2.total)})`);
      return notFit();
    }
    if (b === 1) break;
  }
  // 4. fewer experts / smaller model
  if (f.type === 'peer') suggestions.push(`a smaller expert table (model.ffn.nSub below ${f.nSub}) or fewer PEER layers (model.ffn.layers)`);
  else if (f.type === 'moe') suggestions.push(`fewer or smaller experts (model.ffn.experts ${f.experts}, model.ffn.expertHidden ${f.expertHidden}) or a smaller model.d`);
  else suggestions.push(`a smaller model (model.d ${model.d}, model.layers ${model.layers}) or a shorter model.seq`);
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
