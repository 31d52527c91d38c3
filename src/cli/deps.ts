/**
 * The heavier modules the CLI drives, imported when a command needs them (so `densetrain info`
 * or a usage error does not pay for the trainer, the data readers or the report's chart
 * libraries).
 */
export type { DatasetListing } from '../data/registry.js';

export const loadTrainer = () => import('../train/train.js');
export const loadData = () => import('../data/index.js');
export const loadReport = () => import('../report/index.js');
export const loadTerminalTables = () => import('../report/terminal.js');
