/**
 * How a run ends: a reason and the message that says why, built once where the run stops and
 * carried to the record. The divergence messages name the likely cause and what to try.
 */
import type { StopReason, TrainConfig } from './types.js';

export interface Stop {
  reason: StopReason;
  message?: string;
}

/** What went non-finite: the loss of a batch, the weights after a step, or the validation loss. */
export type Divergence =
  | { kind: 'loss'; loss: number; beforeAnyStep: boolean }
  | { kind: 'weights'; parameter: string }
  | { kind: 'validation'; valLoss: number };

/** Where in the run: the epoch, the batch (1-based) and the learning rate in force. */
export interface RunPosition {
  epoch: number;
  batch: number;
  lr: number;
}

export function divergedStop(cause: Divergence, at: RunPosition, cfg: TrainConfig): Stop {
  return { reason: 'diverged', message: divergenceMessage(cause, at, cfg) };
}

function divergenceMessage(cause: Divergence, { epoch, batch, lr }: RunPosition, cfg: TrainConfig): string {
  switch (cause.kind) {
    case 'loss':
      // Before any optimizer step the learning rate played no part: the initial network's activations overflowed.
      return cause.beforeAnyStep ? firstBatchOverflowMessage(cause.loss, cfg) : `the loss became ${cause.loss} in epoch ${epoch}, batch ${batch} (lr ${lr}); ${advice(cfg)}`;
    case 'weights':
      return `the weights (${cause.parameter}) became non-finite in epoch ${epoch}, batch ${batch} (lr ${lr}); ${advice(cfg)}`;
    case 'validation':
      return `the validation loss became ${cause.valLoss} after epoch ${epoch} (lr ${lr}); ${advice(cfg)}`;
  }
}

/** A leaky_relu / prelu slope above 1 in size, which multiplies activations layer by layer. */
function growingSlope(cfg: TrainConfig): boolean {
  return (cfg.activation === 'leaky_relu' || cfg.activation === 'prelu') && Math.abs(cfg.alpha) > 1;
}

/** The end of a divergence message: the likely cause, and what to try. */
function advice(cfg: TrainConfig): string {
  const lower = `a lower learning rate (e.g. lr ${cfg.lr / 10})`;
  return growingSlope(cfg) ? `${slopeCause(cfg)}: try a slope of at most 1 in size, or ${lower}` : `try ${lower}`;
}

function slopeCause(cfg: TrainConfig): string {
  return `the ${cfg.activation} slope alpha ${cfg.alpha} multiplies activations by up to ${Math.abs(cfg.alpha)} per hidden layer, which can overflow whatever the learning rate`;
}

function firstBatchOverflowMessage(loss: number, cfg: TrainConfig): string {
  const head = `the loss was ${loss} on the first batch, before any step (so not because of the learning rate): the initial network's activations overflow float32`;
  return growingSlope(cfg) ? `${head}; ${slopeCause(cfg)}: use a slope of at most 1 in size` : `${head}; try fewer or smaller layers${cfg.standardize ? '' : ', or --standardize'}`;
}
