/**
 * Reliability, round two: one writer per run folder (src/train/run-lock.ts).
 * - A folder being trained is locked; a second `train --resume` of it is refused at once (exit 2,
 *   one line naming the folder and the process holding it), and writes nothing.
 * - A lock left by a process killed with SIGKILL is stale (same host, process gone) and the next
 *   `--resume` takes it over and finishes the run; a lock whose lease expired (another host,
 *   power loss) is stale too; a live lease is not.
 * - Taking over a stale lock is race-safe: of several processes trying at once, exactly one wins.
 * - The holder renews its lease and notices when the lock is no longer its own.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireRunLock, LOCK_FILE, readRunLock, RunLockedError, staleReason, type LockRecord } from '../src/train/run-lock.js';
import { readCheckpoint } from '../src/train/checkpoint.js';
import { train } from '../src/train/train.js';
import type { RunRecord } from '../src/train/types.js';
import { collect, ensureBuilt, ROOT, runCli, spawnCli, writeTinyDataset, type TinyDataset } from './helpers/cli.js';
import { expectOneLine } from './helpers/one-line.js';
import { syntheticDataset } from './helpers/synthetic-data.js';

let tmp: string;
let data: TinyDataset;

beforeAll(() => {
  ensureBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'densetrain-rel-lock-'));
  data = writeTinyDataset(join(tmp, 'tiny'));
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

let folders = 0;
function folder(): string {
  const dir = join(tmp, `f${folders++}`);
  mkdirSync(dir);
  return dir;
}

/** A pid that belonged to a process of this host that has exited. */
function deadPid(): number {
  return Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).toString());
}

function writeRecord(dir: string, over: Partial<LockRecord>): LockRecord {
  const now = Date.now();
  const record: LockRecord = {
    host: hostname(),
    pid: process.pid,
    startedAt: new Date(now).toISOString(),
    renewedAt: new Date(now).toISOString(),
    leaseUntil: new Date(now + 60_000).toISOString(),
    token: 'someone-else',
    purpose: 'train',
    ...over,
  };
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify(record));
  return record;
}

describe('the lock module', () => {
  it('a held lock refuses a second holder, naming host, pid and purpose; release frees it', async () => {
    const dir = folder();
    const lock = await acquireRunLock(dir, { purpose: 'train --resume' });
    const error = await acquireRunLock(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RunLockedError);
    expect((error as Error).message).toContain(dir);
    expect((error as Error).message).toContain(`process ${process.pid} on ${hostname()} (train --resume`);
    expect((await readRunLock(dir))?.token).toBe(lock.record.token);
    await lock.release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    await (await acquireRunLock(dir)).release();
    // No temporary files are left behind.
    expect(readdirSync(dir)).toEqual([]);
  });

  it('stale: a process of this host that is gone, or an expired lease; a live lease on another host is not', async () => {
    const gone = writeRecord(folder(), { pid: deadPid() });
    expect(staleReason(gone)).toMatch(/is gone/);
    const expired = writeRecord(folder(), { host: 'other-machine', pid: 1, leaseUntil: new Date(Date.now() - 1000).toISOString() });
    expect(staleReason(expired)).toMatch(/lease expired/);
    const live = writeRecord(folder(), { host: 'other-machine', pid: 1 });
    expect(staleReason(live)).toBeNull();

    for (const over of [{ pid: deadPid() }, { host: 'other-machine', pid: 1, leaseUntil: new Date(Date.now() - 1000).toISOString() }]) {
      const dir = folder();
      writeRecord(dir, over);
      const lock = await acquireRunLock(dir);
      expect((await readRunLock(dir))?.token).toBe(lock.record.token);
      await lock.release();
    }
    const dir = folder();
    writeRecord(dir, { host: 'other-machine', pid: 1 });
    await expect(acquireRunLock(dir)).rejects.toThrow(/in use by process 1 on other-machine/);
    expect((await readRunLock(dir))?.token).toBe('someone-else');
  });

  it('renewal extends the lease, and a holder notices when its lock was taken', async () => {
    const dir = folder();
    let clock = Date.now();
    const lock = await acquireRunLock(dir, { now: () => clock, leaseMs: 1000, renewMs: 60_000 });
    const first = (await readRunLock(dir))!.leaseUntil;
    clock += 5000;
    await lock.renew();
    const second = (await readRunLock(dir))!.leaseUntil;
    expect(Date.parse(second) - Date.parse(first)).toBe(5000);
    expect(lock.lost).toBe(false);
    writeRecord(dir, { token: 'thief' });
    await lock.renew();
    expect(lock.lost).toBe(true);
    await lock.release();
    expect((await readRunLock(dir))?.token).toBe('thief'); // not ours: not removed
  });

  it('taking over a stale lock is race-safe: of 6 processes at once, exactly one wins', async () => {
    const dir = folder();
    writeRecord(dir, { pid: deadPid() });
    const moduleUrl = pathToFileURL(join(ROOT, 'dist', 'src', 'train', 'run-lock.js')).href;
    // All start their attempt at the same moment (after each has loaded the module), so they race.
    const startAt = Date.now() + 1500;
    const script = `
      const { acquireRunLock } = await import(${JSON.stringify(moduleUrl)});
      await new Promise((r) => setTimeout(r, Math.max(0, ${startAt} - Date.now())));
      try {
        const lock = await acquireRunLock(${JSON.stringify(dir)});
        process.stdout.write('won ' + lock.record.token);
        await new Promise((r) => setTimeout(r, 1500));
        await lock.release();
      } catch (e) { process.stdout.write('refused ' + e.name); }`;
    const children = Array.from({ length: 6 }, () => collect(spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })));
    const results = await Promise.all(children);
    const outs = results.map((r) => r.stdout);
    expect(outs.filter((o) => o.startsWith('won')), outs.join('\n')).toHaveLength(1);
    expect(outs.filter((o) => o === 'refused RunLockedError'), outs.join('\n')).toHaveLength(5);
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });
});

describe('the library: train() into an outDir holds its lock', () => {
  it('two trainings into one folder at once: one is refused with RunLockedError, the other finishes', async () => {
    const out = folder();
    const dataset = syntheticDataset({ train: 120, test: 30 });
    const run = () => train({ layers: [64, 8, 4], epochs: 2, batchSize: 8, backend: 'reference' }, { dataset, outDir: out });
    const results = await Promise.allSettled([run(), run()]);
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(rejected).toHaveLength(1);
    expect(rejected[0]!.reason).toBeInstanceOf(RunLockedError);
    for (const r of results) if (r.status === 'fulfilled') r.value.model.dispose();
    expect(existsSync(join(out, LOCK_FILE))).toBe(false); // released at the end
    expect((await readCheckpoint(out)).state.epoch).toBe(2);
  });
});

describe('the CLI: one writer per run folder', () => {
  it('a second --resume is refused at once naming the holder; after kill -9 the lock is taken over and the run finishes', async () => {
    const out = join(tmp, 'run');
    const trainArgs = ['train', '--data', data.dir, '--layers', '64,32,10', '--epochs', '2', '--batch-size', '2', '--out', out, '--quiet'];
    expect((await runCli(trainArgs, { cwd: tmp, timeoutMs: 60_000, env: { DENSETRAIN_BACKEND: 'reference' } })).code).toBe(0);

    // A long resume holds the folder.
    const first = spawnCli(['train', '--resume', out, '--epochs', '100000', '--quiet'], { cwd: tmp, env: { DENSETRAIN_BACKEND: 'reference' } });
    let seen = '';
    const training = new Promise<void>((resolve) => {
      first.stderr!.on('data', (chunk: Buffer) => {
        seen += chunk.toString();
        if (/^epoch +3\//m.test(seen)) resolve();
      });
    });
    const firstDone = collect(first, 110_000);
    await training;
    const lockBefore = await readRunLock(out);
    expect(lockBefore?.pid).toBe(first.pid);

    const second = await runCli(['train', '--resume', out, '--epochs', '5'], { cwd: tmp, timeoutMs: 60_000 });
    expectOneLine(second, out, new RegExp(`is in use by process ${first.pid} on ${hostname()} \\(train --resume`));
    expect(second.stdout).not.toMatch(/^data:/m); // refused before loading the data

    first.kill('SIGKILL');
    expect((await firstDone).signal).toBe('SIGKILL');
    expect((await readRunLock(out))?.pid).toBe(first.pid); // left behind

    const done = (await readCheckpoint(out)).state.epoch;
    const target = done + 1;
    const third = await runCli(['train', '--resume', out, '--epochs', String(target), '--quiet'], { cwd: tmp, timeoutMs: 110_000, env: { DENSETRAIN_BACKEND: 'reference' } });
    expect(third.code, third.stderr).toBe(0);
    expect(existsSync(join(out, LOCK_FILE))).toBe(false);
    expect(existsSync(join(out, 'INCOMPLETE'))).toBe(false);
    const record = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as RunRecord;
    expect(record.config.epochs).toBe(target);
    expect(record.epochs.map((e) => e.epoch)).toEqual(Array.from({ length: target }, (_, i) => i + 1));
  });

  it('a compare member folder held by a live process elsewhere is refused before anything trains', async () => {
    const series = join(tmp, 'series');
    mkdirSync(join(series, 'activation-relu'), { recursive: true });
    writeRecord(join(series, 'activation-relu'), { host: 'other-machine', pid: 77, purpose: 'a compare/sweep run' });
    const result = await runCli(['compare', '--data', data.dir, '--layers', '64,8,10', '--activation', 'tanh,relu', '--epochs', '1', '--out', series], {
      cwd: tmp,
      timeoutMs: 60_000,
      env: { DENSETRAIN_BACKEND: 'reference' },
    });
    expectOneLine(result, join(series, 'activation-relu'), /is in use by process 77 on other-machine \(a compare\/sweep run/);
    expect(existsSync(join(series, 'activation-tanh'))).toBe(false);
  });
});
