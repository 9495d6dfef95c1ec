// Helpers shared by the tests that train small models through the library.
import { loadConfig, openRun, type Config } from '../src/index.js';

/** The 'tiny' preset shrunk so each step takes milliseconds: d32, 2 layers, seq 32, batch 4, 12 steps. */
export function tinyTrainConfig(corpus: string, over: Record<string, unknown> = {}): Config {
  return loadConfig({
    preset: 'tiny',
    overrides: {
      'data.paths': [corpus], 'model.d': 32, 'model.layers': 2, 'model.heads': 2, 'model.seq': 32,
      'train.batch': 4, 'train.steps': 12, 'train.warmup': 2, 'train.logEvery': 1, 'train.evalEvery': 4, 'train.evalBatches': 2,
      ...over,
    },
  });
}

/** Every parameter and buffer of a run's checkpoint, concatenated (file bytes differ: each save has its own id). */
export function checkpointWeights(runDir: string): Buffer {
  const { model } = openRun(runDir);
  return Buffer.concat([...model.namedParameters(), ...model.namedBuffers()]
    .map(([, t]) => Buffer.from(Float32Array.from(t.contiguous().data as ArrayLike<number>).buffer)));
}
