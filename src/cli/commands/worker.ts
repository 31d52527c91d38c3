/**
 * `densetrain worker --queue URL [--concurrency N] [--threads T]`: runs the trials that compare,
 * sweep and tune coordinators queue with --queue, on this machine, until stopped. --concurrency N
 * starts N worker processes (one trial each at a time: a crash or out-of-memory fails one
 * trial, and CPU-bound trials get a core each); SIGINT/SIGTERM checkpoints the running trials
 * and hands them back to the queue, then exits (130/143).
 *
 * The queue URL may instead come from DENSETRAIN_QUEUE, which keeps a password off the process
 * list; child workers always get it that way.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { EXIT_INTERRUPTED, EXIT_TERMINATED, ExitRequest, UsageError } from '../errors.js';
import type { RegisterCommand } from '../context.js';
import { positiveInt } from '../parallel.js';


interface WorkerCliOptions {
  queue?: string;
  concurrency?: string;
  threads?: string;
  verbose?: boolean;
}

/** Milliseconds from an environment variable (tests shorten BullMQ's lock), or undefined. */
function envMs(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 100 || n > 600_000) throw new UsageError(`${name} must be an integer number of milliseconds in 100-600000, got ${JSON.stringify(raw)}`);
  return n;
}

export const registerWorkerCommand: RegisterCommand = (program, { io }) => {
  program
    .command('worker')
    .description('run queued trials (compare/sweep/tune --queue) on this machine until stopped; listens on no port')
    .option('--queue <url>', 'redis://[user:password@]host:port[/db] or rediss://... (default: $DENSETRAIN_QUEUE)')
    .option('--concurrency <n>', 'worker processes on this machine, one trial each at a time (default 1)')
    .option('--threads <n>', 'native or wasm threads per trial (default: the CPUs divided by --concurrency)')
    .option('--verbose', 'print stack traces on errors')
    .action(async (options: WorkerCliOptions) => {
      const url = options.queue ?? process.env['DENSETRAIN_QUEUE'];
      if (url === undefined || url === '') throw new UsageError('worker needs --queue redis://host:port (or DENSETRAIN_QUEUE)');
      const { parseQueueUrl } = await import('../../experiments/queue-url.js');
      const target = parseQueueUrl(url, options.queue !== undefined ? '--queue' : 'DENSETRAIN_QUEUE');
      const concurrency = positiveInt(options.concurrency, '--concurrency') ?? 1;
      const { availableParallelism } = await import('node:os');
      const threads = positiveInt(options.threads, '--threads') ?? Math.max(1, Math.floor(availableParallelism() / concurrency));
      const lockMs = envMs('DENSETRAIN_QUEUE_LOCK_MS');
      if (concurrency > 1) {
        await superviseChildren(url, concurrency, threads, (line) => io.out(line));
        return;
      }
      // Before the kernels load: the native pool sizes itself from it.
      process.env['DENSETRAIN_THREADS'] = String(threads);
      const { startQueueWorker } = await import('../../experiments/queue-worker.js');
      const worker = await startQueueWorker({
        target,
        threads,
        log: (line) => io.out(line),
        ...(lockMs !== undefined ? { lockMs, stalledMs: Math.max(100, Math.floor(lockMs / 2)) } : {}),
      });
      let received: NodeJS.Signals | null = null;
      const onSignal = (name: NodeJS.Signals) => {
        if (received !== null) process.exit(name === 'SIGTERM' ? EXIT_TERMINATED : EXIT_INTERRUPTED);
        received = name;
        io.err(`densetrain: ${name === 'SIGTERM' ? 'terminated' : 'interrupted'}; checkpointing the running trial and handing it back to the queue`);
        void worker.stop();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      await worker.closed;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (received !== null) throw new ExitRequest(received === 'SIGTERM' ? EXIT_TERMINATED : EXIT_INTERRUPTED);
    });
};

/** --concurrency N: N single-trial worker processes, stopped together. */
async function superviseChildren(url: string, count: number, threads: number, log: (line: string) => void): Promise<void> {
  const bin = fileURLToPath(new URL('../../../../bin/densetrain.js', import.meta.url));
  const env = { ...process.env, DENSETRAIN_QUEUE: url };
  const children = Array.from({ length: count }, (_, i) => {
    // Own process groups: a Ctrl-C in the terminal reaches this process only, which passes it on
    // once (a second SIGINT would make a child quit without its checkpoint).
    const child = fork(bin, ['worker', '--concurrency', '1', '--threads', String(threads)], {
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const prefix = `[${i + 1}] `;
    child.stdout?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (line !== '') log(prefix + line);
    });
    child.stderr?.on('data', (chunk: Buffer) => process.stderr.write(chunk));
    return child;
  });
  const forward = (name: NodeJS.Signals) => {
    for (const child of children) if (child.exitCode === null) child.kill(name);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const codes = await Promise.all(children.map((child) => new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)))));
  process.off('SIGINT', forward);
  process.off('SIGTERM', forward);
  const worst = codes.find((c) => c !== 0);
  if (worst !== undefined) throw new ExitRequest(worst);
}
