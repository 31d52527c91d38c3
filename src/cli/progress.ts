/**
 * Training progress on stderr: on a terminal, a cli-progress bar per epoch (batches, loss,
 * samples/s, ETA) replaced by a one-line summary when the epoch ends; otherwise (a pipe, a log
 * file, --quiet) only the one-line summary per epoch.
 */
import { MultiBar, SingleBar } from 'cli-progress';
import type { EpochRecord } from '../train/types.js';
import { formatCount, formatLoss, formatPercent, formatSeconds } from '../format.js';
import { type Io } from './io.js';

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

/**
 * Several trials at once: on a terminal, one cli-progress bar per running trial (batches of
 * its epoch, and a note such as its last validation accuracy); lines go above the bars. Off a
 * terminal (or with bars off) only the lines are written, to stderr.
 */
export interface TrialBars {
  add(id: string, epoch: number, epochs: number): void;
  batch(id: string, epoch: number, batch: number, batches: number): void;
  note(id: string, text: string): void;
  remove(id: string): void;
  log(line: string): void;
  /** Whether bars are drawn (else every epoch deserves a line). */
  readonly drawing: boolean;
  stop(): void;
}

export function createTrialBars(io: Io, bars: boolean): TrialBars {
  let multi: MultiBar | null = null;
  const rows = new Map<string, SingleBar>();
  return {
    drawing: bars,
    add(id, epoch, epochs) {
      if (!bars) return;
      multi ??= new MultiBar({ stream: io.stderr, format: '{trial} [{bar}] epoch {epoch}/{epochs} batch {value}/{total} | {note}', barsize: 20, hideCursor: true, clearOnComplete: true, fps: 8 });
      rows.set(id, multi.create(1, 0, { trial: id, epoch, epochs, note: '' }));
    },
    batch(id, epoch, batch, batches) {
      const bar = rows.get(id);
      if (!bar) return;
      if (bar.getTotal() !== batches) bar.setTotal(batches);
      bar.update(batch, { epoch });
    },
    note(id, text) {
      rows.get(id)?.update({ note: text });
    },
    remove(id) {
      const bar = rows.get(id);
      if (bar && multi) multi.remove(bar);
      rows.delete(id);
      // With no bar left, stop drawing: a line logged now is written at once, not buffered for a redraw that never comes.
      if (rows.size === 0 && multi) {
        multi.stop();
        multi = null;
      }
    },
    log(line) {
      if (multi) multi.log(`${line}\n`);
      else io.err(line);
    },
    stop() {
      multi?.stop();
      multi = null;
      rows.clear();
    },
  };
}
