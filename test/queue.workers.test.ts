/**
 * compare/sweep with --queue on `densetrain worker` processes over a real Redis (Debian's
 * redis-server on 127.0.0.1, a free port, started and stopped here):
 * - a sweep over 3 workers equals the local sweep bit for bit;
 * - a worker SIGKILLed mid-trial: BullMQ hands the trial to another worker, which resumes its
 *   checkpoint; the weights equal an uninterrupted run's;
 * - SIGINT on a worker checkpoints and hands the trial back (exit 130);
 * - a repeated delivery of a finished trial is not trained again; a bad payload fails its job
 *   and the worker carries on;
 * - the coordinator SIGKILLed and restarted with --resume reattaches without re-running trials;
 * - with a password-protected Redis the password is in no file and no output;
 * - Redis restarted with its append-only file loses nothing.
 * Every wait is bounded: a misbehaving Redis fails the test instead of hanging it.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TuneFile } from '../src/experiments/tune.js';
import { collect, ensureBuilt, runCli, spawnCli, writeTinyDataset, type CliResult } from './helpers/cli.js';
import { requireRedis, startRedis, type RedisServer } from './helpers/redis.js';

const enabled = requireRedis();

/** Three quick runs (the bit-for-bit comparison). */
const SWEEP = ['sweep', '--param', 'lr', '--values', '0.01,0.05,0.1', '--layers', '784,64,10', '--epochs', '2', '--quiet'];
/** One run long enough to be caught in the middle (the fault tests). */
const LONG = ['sweep', '--param', 'lr', '--values', '0.05', '--layers', '784,256,10', '--batch-size', '16', '--epochs', '6', '--quiet'];
// Short enough for a quick hand-over, long enough that a busy machine renews it in time.
const LOCK_ENV = { DENSETRAIN_QUEUE_LOCK_MS: '5000' };

interface WorkerProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<CliResult>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitUntil(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

function modelBytes(dir: string): Buffer {
  return readFileSync(join(dir, 'model.safetensors'));
}

/** TCP sockets in LISTEN state that a process holds (Linux /proc), as local port numbers. */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      /* closed meanwhile */
    }
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[3] === '0A' && inodes.has(f[9]!)) ports.push(parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

/** Every file under dir, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

describe.skipIf(!enabled)('compare/sweep on densetrain workers over Redis', () => {
  let redis: RedisServer;
  let tmp: string;
  const workers: WorkerProcess[] = [];
  const coordinators: ChildProcess[] = [];

  function startWorker(url: string, env: Record<string, string> = {}): WorkerProcess {
    const child = spawnCli(['worker', '--queue', url, '--threads', '1'], { env: { ...LOCK_ENV, ...env } });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const exited = collect(child, 10 * 60_000);
    const w = { child, output: () => out, exited };
    workers.push(w);
    return w;
  }

  async function readyWorker(url: string, env: Record<string, string> = {}): Promise<WorkerProcess> {
    const w = startWorker(url, env);
    await waitUntil('the worker to connect', () => w.output().includes('waiting for trials'), 30_000);
    return w;
  }

  function coordinator(args: string[], env: Record<string, string> = {}): { child: ChildProcess; done: Promise<CliResult> } {
    const child = spawnCli(args, { env });
    coordinators.push(child);
    return { child, done: collect(child, 5 * 60_000) };
  }

  beforeAll(async () => {
    ensureBuilt();
    redis = await startRedis();
    tmp = mkdtempSync(join(tmpdir(), 'densetrain-queue-'));
    const [sweep, long] = await Promise.all([
      runCli([...SWEEP, '--out', join(tmp, 'local-sweep')], { timeoutMs: 5 * 60_000 }),
      runCli([...LONG, '--out', join(tmp, 'local-long')], { timeoutMs: 5 * 60_000 }),
    ]);
    expect(sweep.code, sweep.stderr).toBe(0);
    expect(long.code, long.stderr).toBe(0);
  }, 10 * 60_000);

  afterEach(async () => {
    for (const w of workers.splice(0)) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    for (const c of coordinators.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  afterAll(async () => {
    await redis?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('a sweep over 3 worker processes equals the local sweep bit for bit', async () => {
    const pool = await Promise.all([readyWorker(redis.url), readyWorker(redis.url), readyWorker(redis.url)]);
    const out = join(tmp, 'queued-sweep');
    const r = await coordinator([...SWEEP, '--out', out, '--queue', redis.url]).done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/on the workers of redis:\/\/127\.0\.0\.1:\d+\/0/);
    for (const folder of ['lr-0.01', 'lr-0.05', 'lr-0.1']) {
      expect(modelBytes(join(out, folder)).equals(modelBytes(join(tmp, 'local-sweep', folder))), folder).toBe(true);
      expect(existsSync(join(out, folder, 'INCOMPLETE'))).toBe(false);
    }
    const local = JSON.parse(readFileSync(join(tmp, 'local-sweep', 'sweep.json'), 'utf8'));
    const queued = JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8'));
    expect(queued.runs.map((x: { testAccuracy: unknown }) => x.testAccuracy)).toEqual(local.runs.map((x: { testAccuracy: unknown }) => x.testAccuracy));
    // Workers connect out to Redis only: no listening socket in any of them.
    expect(listeningPorts(redis.pid())).toContain(redis.port); // the check sees a listener where there is one
    for (const w of pool) expect(listeningPorts(w.child.pid!)).toEqual([]);
    // Every trial ran once, spread over the workers.
    const started = pool.map((w) => (w.output().match(/: started/g) ?? []).length);
    expect(started.reduce((a, b) => a + b, 0), pool.map((w) => w.output()).join('\n---\n')).toBe(3);
  }, 5 * 60_000);

  it('a worker SIGKILLed mid-trial: another worker resumes the checkpoint and ends with the same weights', async () => {
    const first = await readyWorker(redis.url);
    const out = join(tmp, 'killed');
    const run = coordinator([...LONG, '--out', out, '--queue', redis.url]);
    const trialDir = join(out, 'lr-0.05');
    await waitUntil('the first checkpoint', () => existsSync(join(trialDir, 'checkpoint.safetensors')));
    first.child.kill('SIGKILL');
    expect(existsSync(join(trialDir, 'metrics.json'))).toBe(false); // killed before the end
    const second = await readyWorker(redis.url);
    const r = await run.done;
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(second.output()).toMatch(/lr=0\.05: started/);
    expect(second.output()).toMatch(/lr=0\.05: completed/);
    expect(modelBytes(trialDir).equals(modelBytes(join(tmp, 'local-long', 'lr-0.05')))).toBe(true);
  }, 5 * 60_000);

  it('SIGINT on a worker checkpoints its trial, hands it back (exit 130); another worker finishes it with the same weights', async () => {
    const first = await readyWorker(redis.url);
    const out = join(tmp, 'interrupted');
    const run = coordinator([...LONG, '--out', out, '--queue', redis.url]);
    const trialDir = join(out, 'lr-0.05');
    await waitUntil('the first checkpoint', () => existsSync(join(trialDir, 'checkpoint.safetensors')));
    first.child.kill('SIGINT');
    const stopped = await first.exited;
    expect(stopped.code).toBe(130);
    expect(stopped.stdout).toMatch(/checkpointed and handed back to the queue/);
    const second = await readyWorker(redis.url);
    const r = await run.done;
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(second.output()).toMatch(/lr=0\.05: completed/);
    expect(modelBytes(trialDir).equals(modelBytes(join(tmp, 'local-long', 'lr-0.05')))).toBe(true);
  }, 5 * 60_000);

  it('a finished trial delivered again is not retrained; a bad payload fails its job and the worker carries on', async () => {
    const worker = await readyWorker(redis.url);
    const out = join(tmp, 'queued-sweep'); // finished by the first test
    const { id } = JSON.parse(readFileSync(join(out, 'queue-experiment.json'), 'utf8')) as { id: string };
    const { Queue, QueueEvents } = await import('bullmq');
    const connection = { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null };
    const queue = new Queue('trials', { prefix: 'densetrain', connection });
    const events = new QueueEvents('trials', { prefix: 'densetrain', connection });
    try {
      await events.waitUntilReady();
      const bad = await queue.add('bad', { v: 1, experiment: { id: 'x', dir: '/tmp' }, trial: { id: 'evil', config: {}, runDir: '/etc' }, decisionTimeoutMs: 0 });
      await expect(bad.waitUntilFinished(events, 30_000)).rejects.toThrow(/bad job payload/);
      const outside = await queue.add('bad2', {
        v: 1,
        experiment: { id: 'x', dir: out },
        trial: { id: 'evil', config: JSON.parse(readFileSync(join(out, 'lr-0.05', 'metrics.json'), 'utf8')).config, runDir: join(out, '..', 'elsewhere') },
        decisionTimeoutMs: 0,
      });
      await expect(outside.waitUntilFinished(events, 30_000)).rejects.toThrow(/not inside the experiment folder/);
      expect(worker.child.exitCode).toBeNull();

      const original = await queue.getJob(`${id}.lr=0.05.1`);
      expect(original).toBeTruthy();
      const model = join(out, 'lr-0.05', 'model.safetensors');
      const before = statSync(model).mtimeMs;
      const again = await queue.add('again', original!.data, { jobId: 'redelivered-1' });
      const result = (await again.waitUntilFinished(events, 30_000)) as { status: string };
      expect(result.status).toBe('completed');
      expect(worker.output()).toMatch(/lr=0\.05: already finished \(completed\) by .*; not trained again/);
      expect(statSync(model).mtimeMs).toBe(before);
    } finally {
      await events.close();
      await queue.close();
    }
  }, 3 * 60_000);

  it('the coordinator SIGKILLed and restarted with --resume reattaches: no trial runs twice', async () => {
    const worker = await readyWorker(redis.url);
    const out = join(tmp, 'coordinator');
    const args = ['sweep', '--param', 'lr', '--values', '0.01,0.05', '--layers', '784,256,10', '--batch-size', '16', '--epochs', '4', '--quiet'];
    const first = coordinator([...args, '--out', out, '--queue', redis.url]);
    await waitUntil('the first trial to finish', () => existsSync(join(out, 'lr-0.01', 'trial-outcome.json')), 120_000);
    first.child.kill('SIGKILL');
    await first.done;
    const second = coordinator(['sweep', '--resume', out, '--queue', redis.url, '--quiet']);
    const r = await second.done;
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const sweep = JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8')) as { runs: { status: string }[] };
    expect(sweep.runs.map((x) => x.status)).toEqual(['completed', 'completed']);
    expect((worker.output().match(/lr=0\.01: started/g) ?? []).length).toBe(1);
    expect((worker.output().match(/lr=0\.05: started/g) ?? []).length).toBe(1);
  }, 5 * 60_000);

  it('tune with ASHA on 2 workers: the scheduler answers each epoch through Redis, pruned trials stop at a rung', async () => {
    await Promise.all([readyWorker(redis.url), readyWorker(redis.url)]);
    const data = writeTinyDataset(join(tmp, 'tiny'));
    const space = join(tmp, 'space.json');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(space, JSON.stringify({ lr: { min: 0.005, max: 0.5, log: true }, activation: ['relu', 'tanh'] }));
    const base = ['--data', data.dir, '--layers', `${data.side * data.side},16,${data.classes}`, '--batch-size', '32'];
    const out = join(tmp, 'tune');
    const r = await coordinator(['tune', '--space', space, '--trials', '8', '--epochs', '6', '--reduction', '2', '--quiet', '--out', out, '--queue', redis.url, ...base]).done;
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const file = JSON.parse(readFileSync(join(out, 'tune.json'), 'utf8')) as TuneFile;
    expect(file.rungs).toEqual([1, 2, 4]);
    expect(file.trials).toHaveLength(8);
    const pruned = file.trials.filter((t) => t.status === 'pruned');
    expect(pruned.length).toBeGreaterThan(0);
    for (const t of pruned) expect(file.rungs).toContain(t.epochs);
    for (const t of file.trials.filter((x) => x.status === 'completed')) expect(t.epochs).toBe(6);
    expect(file.leaderboard).toHaveLength(8);

    // Without pruning the search is deterministic: the same trials and numbers as a local tune.
    const args = ['tune', '--space', space, '--trials', '3', '--epochs', '2', '--scheduler', 'none', '--quiet', ...base];
    const [queued, local] = await Promise.all([
      coordinator([...args, '--out', join(tmp, 'tune-q'), '--queue', redis.url]).done,
      runCli([...args, '--out', join(tmp, 'tune-l')], { timeoutMs: 5 * 60_000 }),
    ]);
    expect(queued.code, queued.stderr).toBe(0);
    expect(local.code, local.stderr).toBe(0);
    const numbers = (dir: string) =>
      (JSON.parse(readFileSync(join(dir, 'tune.json'), 'utf8')) as TuneFile).trials.map((t) => ({ id: t.id, config: t.config, val: t.bestValAccuracy, test: t.testAccuracy }));
    expect(numbers(join(tmp, 'tune-q'))).toEqual(numbers(join(tmp, 'tune-l')));
  }, 5 * 60_000);

  it('Ctrl-C on the coordinator stops the remote trial with a checkpoint (exit 130); --resume continues it to the same weights', async () => {
    const worker = await readyWorker(redis.url);
    const out = join(tmp, 'coordinator-ctrl-c');
    const first = coordinator([...LONG, '--out', out, '--queue', redis.url]);
    const trialDir = join(out, 'lr-0.05');
    await waitUntil('the first checkpoint', () => existsSync(join(trialDir, 'checkpoint.safetensors')));
    first.child.kill('SIGINT');
    const stopped = await first.done;
    expect(stopped.code, stopped.stderr).toBe(130);
    expect(existsSync(join(trialDir, 'INCOMPLETE'))).toBe(true);
    const again = await coordinator(['sweep', '--resume', out, '--queue', redis.url, '--quiet']).done;
    expect(again.code, again.stderr + again.stdout).toBe(0);
    expect((worker.output().match(/lr=0\.05: started/g) ?? []).length).toBe(2); // once, then resumed once
    expect(modelBytes(trialDir).equals(modelBytes(join(tmp, 'local-long', 'lr-0.05')))).toBe(true);
  }, 5 * 60_000);

  it('a worker whose data differs from the coordinator\'s refuses the trial, naming itself and the difference', async () => {
    const { encodeIdxImages, encodeIdxLabels } = await import('../src/data/idx.js');
    const { mkdirSync, writeFileSync } = await import('node:fs');
    // The same name, 'mnist', resolved through DENSETRAIN_DATA to different bytes on each side.
    const writeIdx = (root: string, shift: number) => {
      const dir = join(root, 'mnist');
      mkdirSync(dir, { recursive: true });
      const set = (count: number) => {
        const images = Uint8Array.from({ length: count * 64 }, (_, i) => (i * 7 + shift) % 256);
        const labels = Uint8Array.from({ length: count }, (_, i) => i % 4);
        return { images: encodeIdxImages(count, 8, 8, images), labels: encodeIdxLabels(labels) };
      };
      const train = set(120);
      const test = set(40);
      writeFileSync(join(dir, 'train-images-idx3-ubyte'), train.images);
      writeFileSync(join(dir, 'train-labels-idx1-ubyte'), train.labels);
      writeFileSync(join(dir, 't10k-images-idx3-ubyte'), test.images);
      writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), test.labels);
    };
    writeIdx(join(tmp, 'data-a'), 0);
    writeIdx(join(tmp, 'data-b'), 1);
    const worker = await readyWorker(redis.url, { DENSETRAIN_DATA: join(tmp, 'data-b') });
    const out = join(tmp, 'mismatch');
    const r = await coordinator(
      ['sweep', '--param', 'lr', '--values', '0.05', '--data', 'mnist', '--layers', '64,8,10', '--epochs', '1', '--quiet', '--out', out, '--queue', redis.url],
      { DENSETRAIN_DATA: join(tmp, 'data-a') },
    ).done;
    expect(r.code).not.toBe(0);
    const line = /the data "mnist" on worker ([^ ]+:\d+) differs from the coordinator's: same sizes .* but different pixel or label bytes/.exec(r.stdout + r.stderr);
    expect(line, r.stdout + r.stderr).not.toBeNull();
    expect(line![1]).toMatch(new RegExp(`:${worker.child.pid}$`));
    expect(existsSync(join(out, 'lr-0.05', 'model.safetensors'))).toBe(false);
    expect(worker.child.exitCode).toBeNull(); // the worker carries on
  }, 3 * 60_000);

  it('Redis restarted with its append-only file: the experiment completes with the same weights', async () => {
    const durable = await startRedis({ appendOnly: true });
    try {
      await readyWorker(durable.url);
      const out = join(tmp, 'redis-restart');
      const run = coordinator([...LONG, '--out', out, '--queue', durable.url]);
      await waitUntil('the first checkpoint', () => existsSync(join(out, 'lr-0.05', 'checkpoint.safetensors')));
      await durable.restart();
      const r = await run.done;
      expect(r.code, r.stderr + r.stdout).toBe(0);
      expect(modelBytes(join(out, 'lr-0.05')).equals(modelBytes(join(tmp, 'local-long', 'lr-0.05')))).toBe(true);
    } finally {
      await durable.stop();
    }
  }, 5 * 60_000);
});

describe.skipIf(!enabled)('a password-protected Redis', () => {
  const password = 'pw-Zq7-never-print-me';
  let redis: RedisServer;
  let tmp: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    ensureBuilt();
    redis = await startRedis({ password });
    tmp = mkdtempSync(join(tmpdir(), 'densetrain-queue-auth-'));
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await redis?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('works with the password, and writes or prints it nowhere', async () => {
    const worker = spawnCli(['worker', '--threads', '1'], { env: { DENSETRAIN_QUEUE: redis.url } });
    children.push(worker);
    const workerDone = collect(worker, 5 * 60_000);
    const out = join(tmp, 'sweep');
    const r = await runCli(['sweep', '--param', 'lr', '--values', '0.05', '--layers', '784,32,10', '--epochs', '1', '--quiet', '--out', out, '--queue', redis.url], {
      timeoutMs: 5 * 60_000,
    });
    expect(r.code, r.stderr).toBe(0);
    worker.kill('SIGTERM');
    const w = await workerDone;
    expect(w.code).toBe(143);
    expect(r.stdout).toMatch(/redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0/);
    for (const text of [r.stdout, r.stderr, w.stdout, w.stderr]) expect(text).not.toContain(password);
    const files = filesUnder(out);
    expect(files.length).toBeGreaterThan(5);
    for (const file of files) expect(readFileSync(file).includes(Buffer.from(password)), file).toBe(false);
  }, 5 * 60_000);

  it('a wrong password fails the command in one line that does not quote it', async () => {
    const wrong = `redis://:wrong-${password}@127.0.0.1:${redis.port}`;
    const r = await runCli(['sweep', '--param', 'lr', '--values', '0.05', '--epochs', '1', '--quiet', '--out', join(tmp, 'refused'), '--queue', wrong], {
      timeoutMs: 60_000,
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/cannot reach the queue redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0/);
    expect(r.stderr + r.stdout).not.toContain(password);
  }, 2 * 60_000);
});
