/**
 * --parallel N|auto for tune, compare and sweep: how many trials run at once, and the
 * executor that runs them (this process for one; a pool of worker processes, threads split
 * between them, for more).
 */
import { mkdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { Dataset } from '../data/types.js';
import type { Executor } from '../experiments/executor.js';
import type { Kernels } from '../kernels/types.js';
import type { TrainConfig } from '../train/types.js';
import { UsageError } from './errors.js';
import { plural } from '../format.js';

/** An integer option >= min, or undefined when not given; anything else is a UsageError naming the flag. */
export function positiveInt(raw: string | undefined, flag: string, min = 1): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n) || n < min) throw new UsageError(`${flag} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

/**
 * --parallel: a count, or 'auto': one single-thread trial per CPU (as many as there are trials).
 * Measured for the models densetrain trains (bench/README, "Trials in parallel"): N one-thread
 * trials on N cores finish a series sooner than the same trials one after another with N
 * threads each, because a small model's GEMMs do not keep N threads busy.
 */
export function parallelCount(raw: string | undefined, trials: number): number {
  if (raw === undefined) return 1;
  if (raw === 'auto') return Math.max(1, Math.min(availableParallelism(), trials));
  return Math.min(positiveInt(raw, '--parallel')!, Math.max(1, trials));
}

/** --queue as given, and the experiment folder the coordinator writes (every worker must reach it). */
export interface QueueChoice {
  url: string;
  outDir: string;
  /** Whether the scheduler answers after each epoch (ASHA): workers then wait for the answer. */
  decisions: boolean;
}

/**
 * The executor for N trials at once: this process (the loaded dataset and kernels) for one;
 * else a pool of worker processes with the CPUs split between them (unless --threads is set);
 * with --queue, `densetrain worker` processes anywhere, through BullMQ on Redis.
 */
export async function executorFor(
  parallel: number,
  config: TrainConfig,
  dataset: Dataset,
  kernels?: Kernels,
  queue?: QueueChoice,
): Promise<{ executor: Executor; describe: string }> {
  if (queue !== undefined) return queueExecutor(queue, dataset);
  if (parallel <= 1) {
    const { InProcessExecutor } = await import('../experiments/in-process.js');
    return { executor: new InProcessExecutor({ dataset, ...(kernels ? { kernels } : {}) }), describe: 'one at a time in this process' };
  }
  const { ProcessPoolExecutor } = await import('../experiments/pool.js');
  const threads = config.threads ?? Math.max(1, Math.floor(availableParallelism() / parallel));
  return {
    executor: new ProcessPoolExecutor({ slots: parallel, threadsPerTrial: threads }),
    describe: `${parallel} at once, each in its own process with ${plural(threads, 'native thread')}`,
  };
}

async function queueExecutor(queue: QueueChoice, dataset: Dataset): Promise<{ executor: Executor; describe: string }> {
  const { parseQueueUrl } = await import('../experiments/queue-url.js');
  const target = parseQueueUrl(queue.url);
  const { QueueExecutor, experimentQueueId } = await import('../experiments/queue-executor.js');
  await mkdir(queue.outDir, { recursive: true });
  const experimentId = await experimentQueueId(queue.outDir, target.display);
  const executor = await QueueExecutor.open({
    target,
    experimentId,
    experimentDir: resolve(queue.outDir),
    // Each worker loads the data by name and must find these very bytes.
    fingerprint: (await import('../data/fingerprint.js')).fingerprintDataset(dataset),
    decisionTimeoutMs: queue.decisions ? 30_000 : 0,
  });
  return { executor, describe: `on the workers of ${target.display} (experiment ${experimentId}; start them with: densetrain worker --queue URL)` };
}

export const QUEUE_OPTION_HELP =
  'run the trials on `densetrain worker` processes through Redis: redis://[user:password@]host:port[/db] (rediss:// for TLS); --out must be a folder every worker reaches';

/** --repeats, --parallel and --queue, as compare and sweep declare them. */
export function addSeriesOptions(command: Command): Command {
  return command
    .option('--repeats <n>', 'train each configuration n times with seeds seed, seed+1, ...; tables show mean ± std (default 1)')
    .option('--parallel <n|auto>', 'runs at once, each in its own process with the native threads split between them (default 1; auto: one per CPU)')
    .option('--queue <url>', QUEUE_OPTION_HELP);
}
