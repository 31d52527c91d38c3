/**
 * metrics.jsonl: written line by line while train() runs (readable during the run, from inside
 * an onEpoch callback), one start / epoch / end line per session, batch lines every N batches,
 * resume folding, a half-written last line skipped, and the CLI's run folder holding it.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createReferenceKernels } from '../src/kernels/reference.js';
import { METRICS_LOG_FILE, parseMetricsLog, type MetricsLine } from '../src/train/metrics-log.js';
import { train } from '../src/train/train.js';
import type { TrainConfig } from '../src/train/types.js';
import { ensureBuilt, runCli, writeTinyDataset } from './helpers/cli.js';
import { syntheticDataset } from './helpers/synthetic-data.js';

const dataset = syntheticDataset({ train: 400, test: 100 });
const base: Partial<TrainConfig> = { data: 'synthetic', layers: [64, 16, 4], batchSize: 32, epochs: 3, valSplit: 0.2, patience: 0, lr: 0.05, seed: 3 };
const kernels = createReferenceKernels();

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'densetrain-mlog-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

function lines(text: string): MetricsLine[] {
  return text.trim().split('\n').map((l) => JSON.parse(l) as MetricsLine);
}

describe('metrics.jsonl', () => {
  it('holds each epoch while the run is still going, then the end line; the record is unchanged', async () => {
    const dir = await tempDir();
    const seenDuringRun: number[] = [];
    const { record, model } = await train(base, {
      dataset,
      kernels,
      outDir: dir,
      metricsLog: { everyBatches: 4 },
      // Read by another party in the middle of the run: the epoch just finished is already there.
      onEpoch: (e) => {
        const parsed = parseMetricsLog(readFileSync(join(dir, METRICS_LOG_FILE), 'utf8'));
        expect(parsed.end).toBeNull();
        seenDuringRun.push(parsed.epochs[parsed.epochs.length - 1]!.epoch);
        expect(parsed.epochs[parsed.epochs.length - 1]!.trainLoss).toBe(e.trainLoss);
      },
    });
    model.dispose();
    expect(seenDuringRun).toEqual([1, 2, 3]);

    const all = lines(await readFile(join(dir, METRICS_LOG_FILE), 'utf8'));
    expect(all[0]!.type).toBe('start');
    expect(all[all.length - 1]!.type).toBe('end');
    // 320 training images / 32 = 10 batches per epoch: batch lines after batches 4 and 8 of each epoch.
    const batchLines = all.filter((l) => l.type === 'batch');
    expect(batchLines.map((l) => (l.type === 'batch' ? `${l.epoch}.${l.batch}/${l.batches}` : ''))).toEqual([
      '1.4/10', '1.8/10', '2.4/10', '2.8/10', '3.4/10', '3.8/10',
    ]);
    // A batch line's loss is the mean of its 4 batches' losses (all full batches of 32).
    const firstFour = record.batches.slice(0, 4).map((b) => b.loss);
    const b0 = batchLines[0]!;
    expect(b0.type === 'batch' && b0.loss).toBeCloseTo(firstFour.reduce((a, b) => a + b, 0) / 4, 5);

    const parsed = parseMetricsLog(await readFile(join(dir, METRICS_LOG_FILE), 'utf8'));
    expect(parsed.badLines).toBe(0);
    expect(parsed.start?.config.layers).toEqual([64, 16, 4]);
    expect(parsed.start?.pid).toBe(process.pid);
    expect(parsed.start?.dataset.trainCount).toBe(320);
    expect(parsed.epochs.map((e) => e.epoch)).toEqual([1, 2, 3]);
    expect(parsed.epochs.map((e) => e.valAccuracy)).toEqual(record.epochs.map((e) => e.valAccuracy));
    expect(parsed.end?.stopReason).toBe('completed');
    expect(parsed.end?.bestEpoch).toBe(record.bestEpoch);
    expect(parsed.end?.test?.accuracy).toBe(record.test!.accuracy);
  });

  it('a resumed run appends a new session; epochs fold into one list', async () => {
    const dir = await tempDir();
    const controller = new AbortController();
    const first = await train(base, {
      dataset,
      kernels,
      outDir: dir,
      signal: controller.signal,
      // Stop in the middle of epoch 2.
      onBatch: (b) => {
        if (b.epoch === 2 && b.batch === 5) controller.abort();
      },
    });
    first.model.dispose();
    expect(first.record.stopReason).toBe('interrupted');
    let parsed = parseMetricsLog(await readFile(join(dir, METRICS_LOG_FILE), 'utf8'));
    expect(parsed.end?.stopReason).toBe('interrupted');
    expect(parsed.epochs.map((e) => e.epoch)).toEqual([1]);

    const second = await train({ epochs: 3 }, { dataset, kernels, outDir: dir, resumeFrom: dir });
    second.model.dispose();
    const text = await readFile(join(dir, METRICS_LOG_FILE), 'utf8');
    expect(lines(text).filter((l) => l.type === 'start').length).toBe(2);
    parsed = parseMetricsLog(text);
    expect(parsed.start?.startEpoch).toBe(2);
    expect(parsed.start?.resumedFrom).toContain(dir);
    expect(parsed.epochs.map((e) => e.epoch)).toEqual([1, 2, 3]);
    expect(parsed.end?.stopReason).toBe('completed');
  });

  it('a failure after the start gets an end line saying so; without outDir nothing is written', async () => {
    const dir = await tempDir();
    await expect(
      train(base, {
        dataset,
        kernels,
        outDir: dir,
        onEpoch: () => {
          throw new Error('disk on fire\nsecond line');
        },
      }),
    ).rejects.toThrow('disk on fire');
    const parsed = parseMetricsLog(await readFile(join(dir, METRICS_LOG_FILE), 'utf8'));
    expect(parsed.end).toMatchObject({ stopReason: 'failed', stopMessage: 'disk on fire' });
  });

  it('the reader skips an unfinished last line and counts damaged ones', () => {
    const text = '{"type":"start","startEpoch":1}\n{"type":"epoch","epoch":1,"trainLoss":1}\nnot json\n{"type":"epoch","epoch":2,"trai';
    const parsed = parseMetricsLog(text);
    expect(parsed.epochs.map((e) => e.epoch)).toEqual([1]);
    expect(parsed.badLines).toBe(1);
    expect(parsed.consumed).toBe(text.lastIndexOf('\n') + 1);
    // Continuing from `consumed` once the line is complete.
    const more = parseMetricsLog(`${text.slice(parsed.consumed)}ningLoss":0.5}\n`, parsed);
    expect(more.epochs.map((e) => e.epoch)).toEqual([1, 2]);
  });

  it('densetrain train and each run of densetrain compare leave metrics.jsonl in their run folders', async () => {
    const dir = await tempDir();
    ensureBuilt();
    const data = writeTinyDataset(join(dir, 'data'));
    const out = join(dir, 'run');
    const result = await runCli(['train', '--data', data.dir, '--layers', '64,16,10', '--epochs', '2', '--batch-size', '16', '--out', out, '--quiet']);
    expect(result.code, result.stderr).toBe(0);
    const parsed = parseMetricsLog(await readFile(join(out, METRICS_LOG_FILE), 'utf8'));
    expect(parsed.epochs.map((e) => e.epoch)).toEqual([1, 2]);
    expect(parsed.end?.stopReason).toBe('completed');
    const record = JSON.parse(await readFile(join(out, 'metrics.json'), 'utf8')) as { epochs: { trainLoss: number }[] };
    expect(parsed.epochs.map((e) => e.trainLoss)).toEqual(record.epochs.map((e) => e.trainLoss));

    // Every member of a comparison has its own.
    const series = join(dir, 'series');
    const compared = await runCli(['compare', '--data', data.dir, '--layers', '64,16,10', '--activation', 'relu,sigmoid', '--epochs', '2', '--batch-size', '16', '--out', series, '--quiet']);
    expect(compared.code, compared.stderr).toBe(0);
    for (const member of ['activation-relu', 'activation-sigmoid']) {
      const log = parseMetricsLog(await readFile(join(series, member, METRICS_LOG_FILE), 'utf8'));
      expect(log.start?.config.activation, member).toBe(member.replace('activation-', ''));
      expect(log.epochs.map((e) => e.epoch), member).toEqual([1, 2]);
      expect(log.end?.stopReason, member).toBe('completed');
    }
  });
});
