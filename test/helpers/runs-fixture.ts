/**
 * A folder of runs for the dashboard tests, made by the real CLI on a tiny CSV dataset:
 *
 *   <root>/runs/solo            densetrain train (2 epochs): metrics.jsonl, metrics.json, report.html
 *   <root>/runs/study           densetrain compare --activation relu,tanh: compare.json/html + 2 run folders
 *   <root>/runs/old             metrics.json and report.html only (a run from before metrics.jsonl)
 *   <root>/runs/dead            metrics.jsonl with a start line of a process that is gone and a damaged line
 *   <root>/runs/outside-link    a symbolic link to <root>/outside (never followed)
 *   <root>/runs/secret-link.html  a symbolic link to <root>/outside/secret.html
 *   <root>/outside/secret.html  what must never be served
 *
 * And a writer for a run that a test drives epoch by epoch (writeLiveRun).
 */
import { cp, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { METRICS_LOG_FILE, MetricsLogWriter } from '../../src/train/metrics-log.js';
import type { TrainConfig } from '../../src/train/types.js';
import { runCli, writeTinyDataset } from './cli.js';

export const SECRET = 'TOP-SECRET-do-not-serve';

export interface RunsFixture {
  root: string;
  runs: string;
  outside: string;
  data: string;
}

export async function makeRunsFixture(root: string): Promise<RunsFixture> {
  const runs = join(root, 'runs');
  const outside = join(root, 'outside');
  const data = writeTinyDataset(join(root, 'data')).dir;
  await mkdir(runs, { recursive: true });
  await mkdir(outside, { recursive: true });
  await writeFile(join(outside, 'secret.html'), `<p>${SECRET}</p>\n`);
  await writeFile(join(outside, 'metrics.json'), `{"secret":"${SECRET}"}\n`);

  const common = ['--data', data, '--layers', '64,16,10', '--batch-size', '16', '--quiet'];
  const solo = await runCli(['train', ...common, '--epochs', '2', '--out', join(runs, 'solo')]);
  expect(solo.code, solo.stderr).toBe(0);
  const study = await runCli(['compare', ...common, '--activation', 'relu,tanh', '--epochs', '2', '--out', join(runs, 'study')]);
  expect(study.code, study.stderr).toBe(0);

  const old = join(runs, 'old');
  await mkdir(old);
  await cp(join(runs, 'solo', 'metrics.json'), join(old, 'metrics.json'));
  await cp(join(runs, 'solo', 'report.html'), join(old, 'report.html'));

  const dead = join(runs, 'dead');
  await mkdir(dead);
  const start = JSON.parse((await readFile(join(runs, 'solo', METRICS_LOG_FILE), 'utf8')).split('\n')[0]!) as Record<string, unknown>;
  // pid 2^22 + 1 is above Linux's pid_max: no such process.
  await writeFile(
    join(dead, METRICS_LOG_FILE),
    `${JSON.stringify({ ...start, pid: 4194305, host: hostname() })}\n{"type":"epoch","epoch":1,"trainLoss":1.5,"trainAccuracy":0.4,"valLoss":1.6,"valAccuracy":0.35,"lr":0.05,"seconds":0.1,"samplesPerSecond":1000}\nnot json at all\n{"type":"epoch","epo`,
  );

  await symlink(outside, join(runs, 'outside-link'));
  await symlink(join(outside, 'secret.html'), join(runs, 'secret-link.html'));
  return { root, runs, outside, data };
}

/** A run folder written line by line by the test (this process's pid: it counts as running). */
export class LiveRun {
  readonly dir: string;
  readonly #writer: MetricsLogWriter;
  readonly #config: TrainConfig;

  constructor(dir: string, epochs: number) {
    this.dir = dir;
    this.#writer = new MetricsLogWriter(dir, { everyBatches: 1 });
    this.#config = { layers: [64, 16, 10], activation: 'relu', epochs } as TrainConfig;
  }

  start(): void {
    this.#writer.start({
      config: this.#config,
      backend: { backend: 'reference', isa: 'js', threads: 1, skipped: [] },
      dataset: { name: 'synthetic', source: 'test', classNames: [], trainCount: 100, valCount: 20, testCount: 20, height: 8, width: 8 },
      startEpoch: 1,
      resumedFrom: null,
    } as unknown as Parameters<MetricsLogWriter['start']>[0]);
  }

  epoch(epoch: number): void {
    const loss = 2 / epoch;
    this.#writer.epoch({ epoch, trainLoss: loss, trainAccuracy: 1 - loss / 3, valLoss: loss * 1.1, valAccuracy: 0.9 - loss / 3, lr: 0.05, seconds: 0.5, samplesPerSecond: 200 });
  }

  finish(): void {
    this.#writer.end({ stopReason: 'completed', bestEpoch: 1, test: { loss: 0.5, accuracy: 0.8, count: 20, confusion: [] }, seconds: 1.5 } as unknown as Parameters<MetricsLogWriter['end']>[0]);
    this.#writer.close();
  }

  async remove(): Promise<void> {
    this.#writer.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}
