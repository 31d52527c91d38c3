export { Adam, Sgd, createOptimizer } from './optimizer.js';
export type { AdamOptions, Optimizer, OptimizerConfig, SgdOptions } from './optimizer.js';
export { learningRateAt } from './schedule.js';
export type { ScheduleConfig } from './schedule.js';
