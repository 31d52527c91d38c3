/**
 * Learning-rate schedules, evaluated per epoch (0-based epoch index; the rate is constant
 * within an epoch):
 * - constant: lr
 * - step:     lr * gamma^floor(epoch / stepSize)          (torch StepLR)
 * - cosine:   0.5 * lr * (1 + cos(pi * epoch / epochs))    (torch CosineAnnealingLR with
 *             T_max = epochs and eta_min = 0: the first epoch runs at lr, the last one at a small
 *             positive rate, and the rate would reach 0 after the final epoch)
 */
export type ScheduleName = 'constant' | 'step' | 'cosine';
export const SCHEDULE_NAMES: readonly ScheduleName[] = ['constant', 'step', 'cosine'];

export interface ScheduleConfig {
  lr: number;
  schedule: ScheduleName;
  stepSize: number;
  gamma: number;
  epochs: number;
}

export function learningRateAt(config: ScheduleConfig, epoch: number): number {
  const { lr, schedule } = config;
  switch (schedule) {
    case 'constant':
      return lr;
    case 'step':
      return lr * config.gamma ** Math.floor(epoch / config.stepSize);
    case 'cosine':
      return 0.5 * lr * (1 + Math.cos((Math.PI * Math.min(epoch, config.epochs)) / config.epochs));
    default:
      throw new RangeError(`schedule must be one of ${SCHEDULE_NAMES.join(', ')}; got ${JSON.stringify(schedule)}`);
  }
}
