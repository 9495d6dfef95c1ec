/**
 * Everything a training run needs before its first step, in the order that fails cheapest first:
 * data (a bad corpus is refused before anything big is allocated), the memory check (a model that
 * cannot fit is refused with the numbers), then the model and its optimizers.
 */
import type { Config } from '../config/schema.js';
import { getTokenizer, type Tokenizer, type TokenArray } from '../data/tokenizer.js';
import { loadCorpus, type Corpus } from '../data/corpus.js';
import { splitTokens, checkSplit, type Batch } from '../data/loader.js';
import { estimateMemory, checkFits, MemoryRefusedError } from '../spec/memory.js';
import { buildModel } from '../nn/build.js';
import type { GPT } from '../nn/gpt.js';
import { Tensor, noGrad, stepScope } from '../tensor/index.js';
import { buildOptimizers, type OptimizerSet } from './optimizers.js';

export interface TrainingData {
  tokenizer: Tokenizer;
  corpus: Corpus;
  train: TokenArray;
  val: TokenArray;
}

/** Reads and tokenises the config's corpus (cached) and splits it; throws on unusable data. */
export function loadTrainingData(cfg: Config): TrainingData {
  const tokenizer = getTokenizer(cfg.model.vocab);
  const corpus = loadCorpus(cfg.data.paths, tokenizer);
  const split = splitTokens(corpus.tokens, cfg.data.valFraction);
  checkSplit(split, cfg.model.seq);
  return { tokenizer, corpus, train: split.train, val: split.val };
}

/** Refuses a config whose training memory exceeds what the machine has; returns the estimate. */
export function checkTrainingMemory(cfg: Config): string {
  const fit = checkFits(estimateMemory(cfg.model, cfg.train));
  if (!fit.fits) throw new MemoryRefusedError(fit);
  return fit.message;
}

/** A freshly initialised model (seeded by train.seed) and its optimizers. */
export function buildTraining(cfg: Config): { model: GPT; optimizer: OptimizerSet } {
  const model = buildModel(cfg.model, cfg.train.seed);
  return { model, optimizer: buildOptimizers(model, cfg) };
}

/**
 * Mean loss over fixed batches, in eval mode, without recording a graph. Feed-forward statistics
 * windows restart first, so ffnStats() afterwards describes exactly these batches.
 */
export function validationLoss(model: GPT, batches: Batch[]): number {
  const wasTraining = model.training;
  for (const b of model.blocks.items) b.ffn.resetStats();
  model.eval();
  try {
    return noGrad(() => {
      let total = 0;
      // one pool scope per batch: each batch reuses the previous one's buffers (only a number leaves it)
      for (const b of batches) {
        total += stepScope(() => model.forward(new Tensor(b.x, [b.batch, b.seq]), new Tensor(b.y, [b.batch * b.seq])).loss!.item());
      }
      return total / batches.length;
    });
  } finally {
    model.train(wasTraining);
  }
}

/** The feed-forward layers' statistics (MoE: since the last validationLoss began), keyed `layer<i>` (null if none). */
export function ffnStats(model: GPT): Record<string, unknown> | null {
  const out: Record<string, unknown> = {};
  model.blocks.items.forEach((b, i) => {
    const s = b.ffn.stats();
    if (s) out[`layer${i}`] = s;
  });
  return Object.keys(out).length ? out : null;
}
