/**
 * moelab as a library: everything the `moelab` command does, a program can do from here.
 *
 *   import { loadConfig, train, openRun, evaluateFile, generate, countModel } from 'moelab';
 *   const config = loadConfig({ preset: 'tiny-moe', overrides: { 'train.steps': 200 } });
 *   const run = await train({ config, dir: 'runs/demo', listeners: [(e) => { if (e.type === 'eval') console.log(e.valLoss); }] });
 *   const { model, tokenizer } = openRun('runs/demo');            // read-only, safe while it trains
 *   console.log(evaluateFile(model, tokenizer, 'held-out.txt'));   // { loss, bpb, tokens }
 *
 * Layers below this file (nn, tensor, backend) are reachable through their own modules, but what
 * is exported here is the supported surface.
 */

// configs
export { loadConfig, validateConfig, parseOverrides, ConfigError, type LoadConfigOptions } from './config/load.js';
export { PRESETS, DEFAULT_PRESET, presetNames, getPreset, type Preset } from './config/presets.js';
export type { Config, ConfigInput, ModelConfig, TrainConfig, DataConfig, FfnConfig } from './config/schema.js';

// counting and memory
export { countModel, formatCount, type ModelCount, type LayerCount } from './spec/count.js';
export { estimateMemory, checkFits, describeEstimate, type MemoryEstimate, type FitResult } from './spec/memory.js';

// models
export { buildModel } from './nn/build.js';
export type { GPT } from './nn/gpt.js';
export { FeedForward, type FfnStats } from './nn/ffn.js';
export { MOE_GATES, MOE_ROUTINGS, MOE_BALANCES, type MoeGate, type MoeRouting, type MoeBalance } from './spec/ffn/moe.js';

// data
export { getTokenizer, type Tokenizer } from './data/tokenizer.js';
export { loadCorpus, type Corpus, type LoadCorpusOptions } from './data/corpus.js';
export { dataIdentity, describeDataChange, type DataIdentity } from './data/identity.js';

// training
export { train, type TrainOptions, type TrainResult, type RunState } from './train/loop.js';
export { trainStep, TrainingDiverged, type StepInputs, type StepResult } from './train/step.js';
export { loadTrainingData, buildTraining, checkTrainingMemory, validationLoss } from './train/setup.js';
export type { TrainEvent, TrainListener, StartEvent, StepEvent, EvalEvent, CheckpointEvent, DoneEvent, DivergedEvent } from './train/events.js';
export { METRICS_FILE } from './train/metrics_log.js';
export type { RunProvenance } from './train/provenance.js';
export { openRun, loadRunConfig, runExists } from './train/run.js';
export { benchTrain, type BenchTrainOptions } from './train/bench.js';

// evaluation and sampling
export { evaluateFile, EVAL_DEFINITION, type EvalResult } from './eval/evaluate.js';
export { generate, generateIds, type SampleOptions } from './eval/generate.js';

// the compute runtime
export { computeInfo, setComputeThreads, type ComputeInfo } from './tensor/runtime.js';
