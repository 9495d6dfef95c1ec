// Scaling-law fits: the supported surface of src/study/fit.
export { lbfgs, type LbfgsOptions, type LbfgsResult, type LbfgsReason, type Objective, type ValueAndGrad } from './lbfgs.js';
export { LAWS, getLaw, lawNames, resolveLaw } from './laws/index.js';
export { lawFromJson, readLawFile } from './laws/user.js';
export { lawParams, internalFromParams, logPredict, type Law, type LawParam } from './law.js';
export { computeOf, activeParams, checkPoint, type Point } from './points.js';
export { huber, makeObjective, DEFAULT_HUBER_DELTA } from './objective.js';
export { fitLaw, type FitOptions, type LawFit } from './fit.js';
export { fitReport, predictLoss, rSquared, extrapolationCheck, type FitReport, type ReportOptions, type ParamEstimate, type Extrapolation } from './report.js';
export {
  chinchillaOptimal, chinchillaLoss, abnarLoss, abnarOptimalSparsity, abnarSparsityForParams, logBudgets,
  type ChinchillaParams, type AbnarParams, type Allocation, type SparsityOptimum, type SparsityOptions,
} from './optimal.js';
export { analyseFit, defaultBudgets, fitCurves, isoFlopData, type Analysis, type AnalyseOptions, type IsoFlopData } from './analyse.js';
export { parsePointsCsv, pointsFromSweepResults, pointFromSweepEntry, readPointsFile, readSweepDir } from './read.js';
export { fitMarkdown, allocationMarkdown, sparsityMarkdown, poorlyIdentified } from './markdown.js';
export { fitSummary, writeFitOutputs } from './outputs.js';
