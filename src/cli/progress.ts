/**
 * Training progress on stderr: on a terminal, a cli-progress bar per epoch (batches, loss,
 * samples/s, ETA) replaced by a one-line summary when the epoch ends; otherwise (a pipe, a log
 * file, --quiet) only the one-line summary per epoch.
 */
import { SingleBar } from 'cli-progress';
import type { EpochRecord } from '../train/types.js';
import { formatCount, formatLoss, formatPercent, formatSeconds, type Io } from './io.js';

export interface TrainProgress {
  /** A batch finished: its 1-based position in the epoch, and its loss. */
  batch(epoch: number, batchInEpoch: number, batches: number, loss: number, samples: number): void;
  epoch(record: EpochRecord, epochs: number): void;
  /** Removes a bar in progress (before other output, on interrupt or error). */
  stop(): void;
}

export function formatEpochLine(r: EpochRecord, epochs: number, epochNumber: number): string {
  const parts = [
    `epoch ${String(epochNumber).padStart(String(epochs).length)}/${epochs}`,
    `loss ${formatLoss(r.trainLoss)}`,
    `acc ${formatPercent(r.trainAccuracy)}`,
  ];
  if (r.valLoss !== null) parts.push(`val loss ${formatLoss(r.valLoss)}`, `val acc ${formatPercent(r.valAccuracy)}`);
  parts.push(`lr ${Number(r.lr.toPrecision(4))}`, formatSeconds(r.seconds), `${formatCount(r.samplesPerSecond)} samples/s`);
  return parts.join('  ');
}

export function createTrainProgress(io: Io, options: { bars: boolean; epochNumber: (record: EpochRecord) => number }): TrainProgress {
  let bar: SingleBar | undefined;
  let barEpoch = -1;
  let epochStart = 0;
  let samplesSeen = 0;

  const stop = () => {
    if (bar) {
      bar.stop();
      bar = undefined;
      barEpoch = -1;
    }
  };

  return {
    batch(epoch, batchInEpoch, batches, loss, samples) {
      if (!options.bars) return;
      if (!bar || barEpoch !== epoch) {
        stop();
        bar = new SingleBar({
          stream: io.stderr,
          format: 'epoch {epoch} [{bar}] {value}/{total} batches | loss {loss} | {rate} samples/s | ETA {eta_formatted}',
          barsize: 24,
          hideCursor: true,
          clearOnComplete: true,
          etaBuffer: 50,
          fps: 8,
        });
        bar.start(batches, 0, { epoch, loss: '-', rate: '-' });
        barEpoch = epoch;
        epochStart = performance.now();
        samplesSeen = 0;
      }
      samplesSeen += samples;
      const seconds = (performance.now() - epochStart) / 1000;
      if (batches !== bar.getTotal()) bar.setTotal(batches);
      bar.update(batchInEpoch, {
        loss: formatLoss(loss),
        rate: seconds > 0 ? formatCount(samplesSeen / seconds) : '-',
      });
    },
    epoch(record, epochs) {
      stop();
      io.err(formatEpochLine(record, epochs, options.epochNumber(record)));
    },
    stop,
  };
}
