/**
 * metrics.jsonl: a run's live record, one JSON object per line, appended while it trains, so
 * anything (the `view` dashboard, `tail -f`, a notebook) can follow a run without waiting for
 * metrics.json and report.html at the end.
 *
 *   {"type":"start", ...}   when training starts (again after each --resume): config, backend, data, pid, host
 *   {"type":"batch", ...}   every `everyBatches` batches: mean loss and accuracy over those batches
 *   {"type":"epoch", ...}   after every epoch (an EpochRecord), once its checkpoint is written
 *   {"type":"end", ...}     when train() returns (stopReason, best epoch, test result) or throws ('failed')
 *
 * Each line is written with one write(2) on a file opened for appending, so a reader sees whole
 * lines or, at worst, one unfinished last line (readers skip a line without its newline). Epoch
 * and end lines are also fsync'ed. After a resume, an epoch line repeats an epoch number only if
 * that epoch was redone; the later line is the one that counts (readMetricsLog keeps it).
 *
 * The writer is an event listener over train()'s callbacks (listen() wraps them), so the training
 * loop itself knows nothing about it.
 */
import { closeSync, fdatasyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { BatchEvent, StartEvent, TrainHooks } from './events.js';
import type { EpochRecord, RunRecord, StopReason, TrainConfig } from './types.js';
import { firstLine } from '../first-line.js';

export const METRICS_LOG_FILE = 'metrics.jsonl';
export const METRICS_LOG_VERSION = 1;
/** Batch lines: one per this many batches unless train()'s metricsLog option says otherwise. */
export const DEFAULT_BATCH_EVERY = 20;

export interface StartLine {
  type: 'start';
  version: number;
  time: string;
  pid: number;
  host: string;
  startEpoch: number;
  epochs: number;
  resumedFrom: string | null;
  config: TrainConfig;
  backend: StartEvent['backend'];
  dataset: StartEvent['dataset'];
}

export interface BatchLine {
  type: 'batch';
  time: string;
  epoch: number;
  /** The last batch covered (1-based, within the epoch) and the batches per epoch. */
  batch: number;
  batches: number;
  /** Means over the batches since the previous batch line of this epoch. */
  loss: number;
  accuracy: number;
  lr: number;
}

export interface EpochLine extends EpochRecord {
  type: 'epoch';
  time: string;
}

export type EndStatus = StopReason | 'failed';

export interface EndLine {
  type: 'end';
  time: string;
  stopReason: EndStatus;
  stopMessage?: string;
  bestEpoch?: number;
  test?: { loss: number; accuracy: number; count: number } | null;
  seconds?: number;
}

export type MetricsLine = StartLine | BatchLine | EpochLine | EndLine;

export interface MetricsLogOptions {
  /** A batch line every this many batches (0: none). Default DEFAULT_BATCH_EVERY. */
  everyBatches?: number;
}

/** JSON with non-finite numbers (a diverged loss) written as null instead of failing. */
function lineText(line: MetricsLine): string {
  return `${JSON.stringify(line, (_key, value: unknown) => (typeof value === 'number' && !Number.isFinite(value) ? null : value))}\n`;
}

export class MetricsLogWriter {
  readonly path: string;
  readonly #dir: string;
  readonly #everyBatches: number;
  #fd: number | null = null;
  #started = false;
  #window = { loss: 0, correct: 0, seen: 0, batches: 0 };

  constructor(dir: string, options: MetricsLogOptions = {}) {
    const every = options.everyBatches ?? DEFAULT_BATCH_EVERY;
    if (!Number.isInteger(every) || every < 0) throw new RangeError(`metricsLog.everyBatches must be an integer >= 0, got ${every}`);
    this.#dir = dir;
    this.#everyBatches = every;
    this.path = join(dir, METRICS_LOG_FILE);
  }

  #write(line: MetricsLine, durable: boolean): void {
    if (this.#fd === null) {
      mkdirSync(this.#dir, { recursive: true });
      this.#fd = openSync(this.path, 'a');
    }
    writeSync(this.#fd, lineText(line));
    if (durable) fdatasyncSync(this.#fd);
  }

  start(event: StartEvent): void {
    this.#started = true;
    this.#window = { loss: 0, correct: 0, seen: 0, batches: 0 };
    this.#write(
      {
        type: 'start',
        version: METRICS_LOG_VERSION,
        time: new Date().toISOString(),
        pid: process.pid,
        host: hostname(),
        startEpoch: event.startEpoch,
        epochs: event.config.epochs,
        resumedFrom: event.resumedFrom,
        config: event.config,
        backend: event.backend,
        dataset: event.dataset,
      },
      true,
    );
  }

  batch(event: BatchEvent): void {
    if (this.#everyBatches === 0) return;
    const w = this.#window;
    w.loss += event.loss * event.size;
    w.correct += event.accuracy * event.size;
    w.seen += event.size;
    w.batches++;
    // One line per `everyBatches` batches, counted within the epoch (so the last, partial window of an epoch is left to its epoch line).
    if (event.batch % this.#everyBatches !== 0) return;
    this.#write(
      {
        type: 'batch',
        time: new Date().toISOString(),
        epoch: event.epoch,
        batch: event.batch,
        batches: event.batches,
        loss: w.loss / w.seen,
        accuracy: w.correct / w.seen,
        lr: event.lr,
      },
      false,
    );
    this.#window = { loss: 0, correct: 0, seen: 0, batches: 0 };
  }

  epoch(record: EpochRecord): void {
    this.#window = { loss: 0, correct: 0, seen: 0, batches: 0 };
    this.#write({ type: 'epoch', time: new Date().toISOString(), ...record }, true);
  }

  end(record: RunRecord): void {
    const test = record.test ? { loss: record.test.loss, accuracy: record.test.accuracy, count: record.test.count } : null;
    this.#write(
      {
        type: 'end',
        time: new Date().toISOString(),
        stopReason: record.stopReason,
        ...(record.stopMessage !== undefined ? { stopMessage: record.stopMessage } : {}),
        bestEpoch: record.bestEpoch,
        test,
        seconds: record.seconds,
      },
      true,
    );
  }

  /** An end line for a run that threw; nothing for one that failed before it started (bad config, missing data). */
  fail(error: unknown): void {
    if (!this.#started) return;
    const message = firstLine(error);
    this.#write({ type: 'end', time: new Date().toISOString(), stopReason: 'failed', stopMessage: message }, true);
  }

  close(): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }

  /** train() options whose callbacks also feed this log (the caller's callbacks still run, after it). */
  listen<Options extends TrainHooks>(options: Options): Options {
    return {
      ...options,
      onStart: (event) => {
        this.start(event);
        options.onStart?.(event);
      },
      onBatch: (event) => {
        this.batch(event);
        options.onBatch?.(event);
      },
      onEpoch: (record) => {
        this.epoch(record);
        // Returned: train() awaits a caller's promise (a scheduler's decision between epochs).
        return options.onEpoch?.(record);
      },
    };
  }
}

/** The writer a train() call gets: one per run folder, unless options.metricsLog is false. */
export function metricsLogFor(options: { outDir?: string; metricsLog?: boolean | MetricsLogOptions }): MetricsLogWriter | null {
  if (options.outDir === undefined || options.metricsLog === false) return null;
  return new MetricsLogWriter(options.outDir, typeof options.metricsLog === 'object' ? options.metricsLog : {});
}

// ---------------------------------------------------------------------------------------------
// Reading.

/** What a metrics.jsonl holds, with resumes folded in. */
export interface MetricsLogContents {
  /** The last start line (the current or latest session of the run). */
  start: StartLine | null;
  /** Every epoch, in order; a redone epoch (after a resume) replaces the earlier line. */
  epochs: EpochLine[];
  /** Batch lines of the latest session, in order. */
  batches: BatchLine[];
  /** The end line of the latest session, or null while it runs (or if it died). */
  end: EndLine | null;
  /** Lines that are not JSON objects with a known type (a damaged file). */
  badLines: number;
}

function isLine(value: unknown): value is MetricsLine {
  if (typeof value !== 'object' || value === null) return false;
  const type = (value as { type?: unknown }).type;
  return type === 'start' || type === 'batch' || type === 'epoch' || type === 'end';
}

/**
 * Parses metrics.jsonl text. A last line without its newline is being written: it is skipped,
 * and `consumed` says how many characters were complete lines (where to continue reading).
 */
export function parseMetricsLog(text: string, into?: MetricsLogContents): MetricsLogContents & { consumed: number } {
  const out: MetricsLogContents = into ?? { start: null, epochs: [], batches: [], end: null, badLines: 0 };
  const lastNewline = text.lastIndexOf('\n');
  const complete = lastNewline < 0 ? '' : text.slice(0, lastNewline);
  for (const raw of complete.split('\n')) {
    if (raw.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      out.badLines++;
      continue;
    }
    if (!isLine(value)) {
      out.badLines++;
      continue;
    }
    addLine(out, value);
  }
  return Object.assign(out, { consumed: lastNewline + 1 });
}

function addLine(out: MetricsLogContents, line: MetricsLine): void {
  switch (line.type) {
    case 'start':
      out.start = line;
      out.end = null;
      out.batches = [];
      break;
    case 'batch':
      out.batches.push(line);
      break;
    case 'epoch': {
      if (typeof line.epoch !== 'number') {
        out.badLines++;
        return;
      }
      // A resumed run redoes the epochs after its checkpoint: drop what it replaces.
      while (out.epochs.length > 0 && out.epochs[out.epochs.length - 1]!.epoch >= line.epoch) out.epochs.pop();
      out.epochs.push(line);
      break;
    }
    case 'end':
      out.end = line;
      break;
  }
}
