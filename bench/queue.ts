/**
 * The queue benchmark (compiled to dist/bench/queue.js):
 *
 *   node dist/bench/queue.js [--repeats N] [--trials N] [--epochs N]
 *
 * Needs Debian's redis-server (started here on 127.0.0.1 and a free port, stopped after).
 * Measures, with the real `densetrain` command:
 *  1. the queue's overhead per trial: a sweep of tiny trials (8x8 CSV images, one epoch: the
 *     training itself takes milliseconds) through one worker, against the same sweep run in one
 *     process; (queued - local) / trials is what a job round trip costs (enqueue, a worker takes
 *     it, progress, completion, the coordinator reading the result);
 *  2. trials per hour on this machine: the same sweep of real trials (mnist-sample, 784-128-10)
 *     with 1 worker (all threads) and with 2 workers (the threads split between them).
 * Each figure is the median wall time of --repeats runs (default 3); the load average is printed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { redisAvailable, startRedis } from './redis-server.js';

const BIN = fileURLToPath(new URL('../../bin/densetrain.js', import.meta.url));

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('exit', (code) => (code === 0 ? resolve((performance.now() - started) / 1000) : reject(new Error(`densetrain ${args[0]} exited ${code}: ${err.trim().split('\n').pop()}`))));
  });
}

function startWorkers(url: string, count: number, threads: number): { stop(): Promise<void>; ready: Promise<void> } {
  const children = Array.from({ length: count }, () =>
    spawn(process.execPath, [BIN, 'worker', '--threads', String(threads)], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, DENSETRAIN_QUEUE: url } }),
  );
  const ready = Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          let out = '';
          child.stdout.on('data', (c: Buffer) => {
            out += c.toString();
            if (out.includes('waiting for trials')) resolve();
          });
        }),
    ),
  ).then(() => {});
  return {
    ready,
    stop: () =>
      Promise.all(
        children.map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null) return resolve();
              child.once('exit', () => resolve());
              child.kill('SIGTERM');
            }),
        ),
      ).then(() => {}),
  };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function tinyCsv(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const rows = (n: number) =>
    ['label,' + Array.from({ length: 64 }, (_, i) => `p${i}`).join(','), ...Array.from({ length: n }, (_, i) => `${i % 4},${Array.from({ length: 64 }, (_, j) => ((i * 31 + j * 17) % 256).toString()).join(',')}`)].join('\n');
  writeFileSync(join(dir, 'train.csv'), rows(200));
  writeFileSync(join(dir, 'test.csv'), rows(40));
  return dir;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { repeats: { type: 'string', default: '3' }, trials: { type: 'string', default: '8' }, epochs: { type: 'string', default: '3' } } });
  const repeats = Number(values.repeats);
  const trials = Number(values.trials);
  const epochs = Number(values.epochs);
  if (!redisAvailable()) {
    console.error('queue bench: needs redis-server (Debian: apt-get install redis-server)');
    process.exit(2);
  }
  const tmp = mkdtempSync(join(tmpdir(), 'densetrain-queue-bench-'));
  const redis = await startRedis();
  const lrs = Array.from({ length: trials }, (_, i) => (0.01 * (i + 1)).toFixed(2)).join(',');
  const cpuCount = availableParallelism();
  console.log(`CPU: ${cpus()[0]?.model ?? 'unknown'} x ${cpuCount}; load average at start ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  try {
    // 1. Overhead per trial.
    const tiny = tinyCsv(join(tmp, 'tiny'));
    const tinyArgs = ['sweep', '--param', 'lr', '--values', lrs, '--data', tiny, '--layers', '64,8,4', '--epochs', '1', '--quiet'];
    const local: number[] = [];
    const queued: number[] = [];
    const one = startWorkers(redis.url, 1, cpuCount);
    await one.ready;
    for (let r = 0; r < repeats; r++) {
      local.push(await run([...tinyArgs, '--out', join(tmp, `tiny-local-${r}`)]));
      queued.push(await run([...tinyArgs, '--out', join(tmp, `tiny-queued-${r}`), '--queue', redis.url]));
    }
    await one.stop();
    const overhead = (median(queued) - median(local)) / trials;
    console.log(`overhead: ${trials} tiny trials in one process ${median(local).toFixed(2)} s, through the queue (1 worker) ${median(queued).toFixed(2)} s (medians of ${repeats}): ${(overhead * 1000).toFixed(0)} ms per trial`);

    // 2. Trials per hour.
    const realArgs = ['sweep', '--param', 'lr', '--values', lrs, '--layers', '784,128,10', '--epochs', String(epochs), '--quiet'];
    for (const [workers, threads] of [
      [1, cpuCount],
      [2, Math.max(1, Math.floor(cpuCount / 2))],
    ] as const) {
      const pool = startWorkers(redis.url, workers, threads);
      await pool.ready;
      const times: number[] = [];
      for (let r = 0; r < repeats; r++) times.push(await run([...realArgs, '--out', join(tmp, `real-${workers}-${r}`), '--queue', redis.url]));
      await pool.stop();
      const wall = median(times);
      console.log(`${workers} worker${workers === 1 ? '' : 's'} x ${threads} thread${threads === 1 ? '' : 's'}: ${trials} trials (mnist-sample, 784-128-10, ${epochs} epochs) in ${wall.toFixed(1)} s (median of ${repeats}: ${times.map((t) => t.toFixed(1)).join(', ')}) = ${((trials / wall) * 3600).toFixed(0)} trials/hour`);
    }
    console.log(`load average at end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  } finally {
    await redis.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(`queue bench: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
