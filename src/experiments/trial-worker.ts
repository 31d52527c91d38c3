/**
 * The entry of a trial worker process (forked by the process pool). It runs the trials it is
 * sent, one at a time, with its datasets and kernels loaded once; the native thread count
 * comes from DENSETRAIN_THREADS, set by the pool. Ctrl-C in a terminal reaches every process
 * of the group: the worker ignores SIGINT and stops when the pool says so (after the batch,
 * with a checkpoint). If the pool goes away, the worker stops its trial and exits.
 */
import type { EpochDecision } from './executor.js';
import { cachedResources, loadKernelsModule } from './in-process.js';
import { runTrial } from './trial.js';
import type { FromWorker, ToWorker } from './worker-protocol.js';

const BATCH_MESSAGE_MS = 100;

function send(message: FromWorker): void {
  process.send?.(message);
}

const resources = cachedResources();
let controller: AbortController | null = null;
let awaiting: { epoch: number; resolve: (d: EpochDecision) => void } | null = null;

async function run(message: Extract<ToWorker, { type: 'run' }>): Promise<void> {
  await loadKernelsModule();
  controller = new AbortController();
  let lastBatch = 0;
  const outcome = await runTrial(
    message.trial,
    {
      batch(progress) {
        const now = Date.now();
        if (now - lastBatch < BATCH_MESSAGE_MS && progress.batch < progress.batches) return;
        lastBatch = now;
        send({ type: 'batch', progress });
      },
      epoch(record) {
        return new Promise<EpochDecision>((resolve) => {
          awaiting = { epoch: record.epoch, resolve };
          send({ type: 'epoch', record });
        });
      },
    },
    resources,
    controller.signal,
  );
  controller = null;
  send({ type: 'done', outcome });
}

process.on('SIGINT', () => {});
process.on('disconnect', () => {
  controller?.abort();
  awaiting?.resolve({ stop: false });
  // The trial checkpoints after its batch; then nothing is left to do.
  setTimeout(() => process.exit(0), 30_000).unref();
});
process.on('message', (message: ToWorker) => {
  if (message.type === 'run') {
    run(message).catch((error: unknown) => {
      send({ type: 'done', outcome: { status: 'failed', record: null, error: error instanceof Error ? error.message : String(error) } });
    });
  } else if (message.type === 'decision') {
    if (awaiting && awaiting.epoch === message.epoch) {
      const { resolve } = awaiting;
      awaiting = null;
      resolve(message.decision);
    }
  } else if (message.type === 'stop') {
    controller?.abort();
  }
});
send({ type: 'ready' });
