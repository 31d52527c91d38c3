/**
 * Running one trial in this process: train() into the trial's run folder (resuming its
 * checkpoint when asked), the scheduler's answer awaited after each epoch, then metrics.json
 * and report.html. The folder follows the run-folder lifecycle (INCOMPLETE until finished).
 * Used by the in-process executor and, inside each worker process, by the process pool.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { markComplete, markIncomplete, writeJsonAtomic } from '../train/run-folder.js';
import type { Dataset } from '../data/types.js';
import type { Kernels } from '../kernels/types.js';
import type { ReportInput } from '../report/index.js';
import { CHECKPOINT_FILE } from '../train/checkpoint.js';
import { acquireRunLock, type RunLock } from '../train/run-lock.js';
import type { RunRecord, TrainConfig } from '../train/types.js';
import type { TrialHooks, TrialOutcome, TrialSpec } from './executor.js';
import { firstLine } from '../first-line.js';

export interface TrialResources {
  /** The dataset for a config (callers cache it: every trial of an experiment shares the data). */
  dataset(config: TrainConfig): Promise<Dataset>;
  /** The kernels (callers select them once). */
  kernels(config: TrainConfig): Kernels;
}

/** Runs a trial to its end; failures become a 'failed' outcome. `signal` stops it after its batch. */
export async function runTrial(spec: TrialSpec, hooks: TrialHooks, resources: TrialResources, signal: AbortSignal): Promise<TrialOutcome> {
  const { runDir, config } = spec;
  const controller = new AbortController();
  const forward = () => controller.abort();
  if (signal.aborted) controller.abort();
  signal.addEventListener('abort', forward);
  let pruned: string | null = null;
  let lock: RunLock | null = null;
  try {
    await mkdir(runDir, { recursive: true });
    // One writer per run folder, from before INCOMPLETE is written until the last file is.
    lock = await acquireRunLock(runDir, { purpose: `trial ${spec.id}` });
    const resume = spec.resume && existsSync(join(runDir, CHECKPOINT_FILE));
    await markIncomplete(runDir, `trial ${spec.id} started at ${new Date().toISOString()} (process ${process.pid}) and has not finished`);
    const { train } = await import('../train/train.js');
    const dataset = await resources.dataset(config);
    const kernels = resources.kernels(config);
    const { record, model, testProbabilities } = await train(config, {
      outDir: runDir,
      dataset,
      kernels,
      signal: controller.signal,
      runLock: lock,
      ...(resume ? { resumeFrom: runDir } : {}),
      onBatch: (e) => hooks.batch?.({ epoch: e.epoch, batch: e.batch, batches: e.batches, loss: e.loss }),
      onEpoch: async (epoch) => {
        const decision = await hooks.epoch(epoch);
        // A stop decision stands even when an interrupt arrived meanwhile: the trial is pruned.
        if (decision.stop) {
          pruned = decision.reason;
          controller.abort();
        }
      },
    });
    let status: TrialOutcome['status'];
    if (pruned !== null && record.stopReason === 'interrupted') {
      // The scheduler's stop is final: recorded as an early stop with its reason.
      record.stopReason = 'early-stopping';
      record.stopMessage = pruned;
      status = 'pruned';
    } else if (record.stopReason === 'interrupted') status = 'interrupted';
    else if (record.stopReason === 'diverged') status = 'diverged';
    else status = 'completed';
    model.dispose();
    // The kept model's test probabilities (train() evaluated the test set once), for the report's per-image sections (not for an unfinished run).
    const probs = status === 'interrupted' ? null : testProbabilities;
    return await finishTrial(spec, record, status, probs ? { images: dataset.test, probs } : undefined);
  } catch (error) {
    const interrupted = controller.signal.aborted && (error as Error).name === 'AbortError';
    await markIncomplete(runDir, interrupted ? 'interrupted before a record was written' : `failed: ${firstLine(error)}`).catch(() => {});
    return interrupted ? { status: 'interrupted', record: null } : { status: 'failed', record: null, error: firstLine(error) };
  } finally {
    signal.removeEventListener('abort', forward);
    await lock?.release();
  }
}

async function finishTrial(spec: TrialSpec, record: RunRecord, status: TrialOutcome['status'], test: ReportInput['test']): Promise<TrialOutcome> {
  const { runDir } = spec;
  await writeJsonAtomic(join(runDir, 'metrics.json'), record);
  let report: string | undefined;
  try {
    const { writeReport } = await import('../report/index.js');
    report = await writeReport(runDir, { record, ...(test ? { test } : {}) });
  } catch (error) {
    await markIncomplete(runDir, `report.html could not be written: ${firstLine(error)}`);
    return { status: 'failed', record, error: `report.html could not be written: ${firstLine(error)}` };
  }
  if (status === 'interrupted') await markIncomplete(runDir, `interrupted (${record.stopMessage ?? 'stopped'}); its checkpoint continues with --resume (of the experiment, or densetrain train --resume ${runDir})`);
  else await markComplete(runDir);
  return { status, record, report };
}
