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
export { loadConfig, resolveConfig, validateConfig, parseOverrides, ConfigError, type LoadConfigOptions } from './config/load.js';
export { configForSave, configFromSaved, readSavedConfig } from './config/saved.js';
export { configHash, configIdentity, canonicalJson } from './config/hash.js';
export { PRESETS, DEFAULT_PRESET, presetNames, getPreset, type Preset } from './config/presets.js';
export type { Config, ConfigInput, ModelConfig, TrainConfig, DataConfig, FfnConfig } from './config/schema.js';

// counting and memory
export { resolveModelSpec, type ModelSpec, type LayerSpec } from './spec/model.js';
export { countModel, formatCount, parameterShapes, modelTensorShapes, sparseTables, type ModelCount, type LayerCount } from './spec/count.js';
export { estimateMemory, checkFits, describeEstimate, MemoryRefusedError, type MemoryEstimate, type FitResult } from './spec/memory.js';

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
export { openRun, loadRunConfig, runExists, runDirFor } from './train/run.js';
export { openRunWriter, prepareRunDir, checkRunName, RunDirError, type RunWriter } from './train/rundir.js';
export { readRunLock, RunLockedError } from './io/lock.js';
export { loadCheckpoint, readCheckpointConfig, isCheckpoint, CheckpointError } from './train/checkpoint.js';
export { benchTrain, type BenchTrainOptions } from './train/bench.js';

// evaluation and sampling
export { evaluateFile, evaluateTokens, EVAL_DEFINITION, type EvalResult } from './eval/evaluate.js';
export { scoreTokens, planWindows, WINDOW_DEFINITION, type WindowOptions, type TokenScore, type ScoreWindow } from './eval/windows.js';
export { resolveSuite, fileDomains, evaluateDomains, BUILTIN_SUITES, type Domain, type DomainResult, type SuiteContext } from './eval/suite.js';
export { TEXT_DOMAINS, SLICE_BYTES, UDHR_DOMAIN_LANGUAGES, type TextDomain } from './eval/domains.js';
export { scoreChoices, type ChoiceRequest, type ChoiceScore, type ScoreOptions } from './eval/choice.js';
export { parseTask, loadTaskFile, TaskFormatError, type Task, type TaskItem } from './eval/task_format.js';
export { drawShots, buildContext, DEFAULT_PROMPT, type PromptOptions } from './eval/fewshot.js';
export { METRICS, itemMetrics, predict, summarize, type MetricName, type MetricSummary, type ItemPredictions } from './eval/mc_metrics.js';
export { evaluateTask, type TaskEvalOptions, type TaskResult, type SampleRecord } from './eval/task_eval.js';
export { builtinTask, isBuiltinTask, splitSentences, sotuPartyLeak, TaskUnavailableError, BUILTIN_TASK_NAMES, type BuiltinTaskName, type BuiltinTaskOptions } from './eval/builtin_tasks.js';
export { resolveTask, resolveTasks } from './eval/tasks.js';
export { finetune, freezeGroup, FREEZE_GROUPS, type FreezeGroup, type FinetuneOptions, type FinetuneResult } from './eval/finetune.js';
export { finetuneRun, type FinetuneRunOptions, type FinetuneReport } from './eval/finetune_run.js';
export { readRunDataIdentity, writeRunResult, writeResultFile, RESULTS_DIR } from './eval/run_files.js';
export { appendEvalLines, domainsLine, taskLine, type EvalLine } from './eval/metrics_line.js';
export { generate, generateIds, type SampleOptions } from './eval/generate.js';

// routing you can see (moelab inspect)
export {
  inspectRouting, type RoutingInspection, type LayerInspection, type MoeLayerInspection, type PeerLayerInspection,
  type DenseLayerInspection, type ExpertInspection, type InspectRoutingOptions,
} from './eval/inspect_routing.js';
export { inspectRun, type InspectRunOptions, type RunInspection, type InspectSource } from './eval/inspect_run.js';
export { tokenLabel, type TokenPreference } from './eval/inspect_tokens.js';
export type { RoutingChoices, RoutingObserver } from './nn/moe_choices.js';
export { inspectOutDir, InspectOutError, INSPECT_DIR } from './inspect/out_dir.js';
export { writeInspection, expertLoadCells, ROUTING_JSON, EXPERT_LOAD } from './inspect/write.js';

// the dashboard (a read-only web page over a runs folder)
export { startDashboard, type Dashboard, type DashboardOptions } from './dashboard/server.js';

// the installed moelab
export { moelabVersion, gitCommit } from './util/package.js';

// the compute runtime
export { computeInfo, setComputeThreads, type ComputeInfo } from './tensor/runtime.js';
export { matmulPrecision, setMatmulPrecision, checkMatmulPrecision, withArithmetic, attentionPrecision, setAttentionPrecision, bf16Centering, setBf16Centering, type MatmulPrecision, type RunArithmetic } from './tensor/precision.js';

// studies: sweeps, executors, results, compute-matched comparison
export { parseSweepSpec, readSweepSpec, sweepSpecSchema, type SweepSpec, type SweepSpecInput, type SweepGenerator } from './study/spec.js';
export { expandSweep, stepsForBudget, tokensPerStep, type SweepPoint } from './study/expand.js';
export { fixedActiveVariants, fixedTotalVariants, expertParamsPerLayer, type GeneratedVariant } from './study/generators.js';
export { familyOf, isDenseFamily } from './study/family.js';
export { readManifest, requireManifest, runDirOf, SWEEP_FILE, type SweepManifest, type ManifestPoint } from './study/manifest.js';
export { pointStatus, readFailure, FAILED_FILE, type PointStatus, type PointState, type FailureRecord } from './study/status.js';
export { runJob, type SweepExecutor, type SweepJob, type SweepEvent, type SweepListener, type JobOutcome } from './study/executor.js';
export { LocalExecutor } from './study/local_executor.js';
export { ProcessExecutor, type ProcessExecutorOptions } from './study/process_executor.js';
export { planSweep, runSweep, type SweepPlan, type PlannedPoint, type SweepProgress, type SweepSummary, type RunSweepOptions } from './study/run_sweep.js';
export { collectResults, writeResults, resultsCsv, RESULTS_JSON, RESULTS_CSV, type SweepResult, type SweepResults } from './study/results.js';
export { compareResults, denseFrontier, denseComputeFor, groupSeeds, type Comparison, type ComputeMultiplier, type FrontierPoint, type CompareOptions } from './study/compare.js';
export {
  compareSweep, compareSweepWithPlots, writeComparePlots, COMPARE_JSON, LOSS_VS_COMPUTE, COMPUTE_MULTIPLIER, type ComparePlots,
} from './study/compare_sweep.js';
export { writeSweepReport, chooseLaw, REPORT_MD, type SweepReport, type SweepReportData, type SweepReportOptions, type SweepFit } from './study/report.js';
// predefined studies (moelab study)
export { STUDIES, studyNames, getStudy } from './study/studies/index.js';
export { STUDY_BASE, type StudyDefinition } from './study/studies/design.js';
export { sizeStudy, parseDuration, roundSig, StudyBudgetError, type RunTemplate, type SizingInput, type SizedStudy, type SizedPoint } from './study/studies/sizing.js';
export {
  planStudy, readStudyPlan, writeStudyPlan, studySpec, studyTemplateSpec, defaultMeasure, STUDY_FILE,
  type StudyPlan, type PlanStudyOptions, type CalibratedConfig,
} from './study/studies/plan.js';
export { runStudy, dryRunStudy, studyPlanFor, type RunStudyOptions, type StudyResult, type StudyEvent } from './study/studies/run.js';
export {
  contrastAtBudgets, contrastOutcome, multiplierBySeed, multiplierOutcome, verdictMarkdown, stat,
  type Verdict, type Outcome, type Contrast, type SeedMultiplier, type Stat,
} from './study/studies/verdict.js';
// sweeps across machines (Redis + BullMQ queue, workers): import from 'moelab/queue', so that
// programs that do not use it never load BullMQ and ioredis
// scaling studies: law fits and plots
export * from './study/fit/index.js';
export * from './study/plot/index.js';
