/**
 * One writer per run folder: a lock file in the folder naming who holds it, with a lease the
 * holder renews while it works.
 *
 *   <folder>/densetrain.lock   {"host", "pid", "startedAt", "renewedAt", "leaseUntil", "token", "purpose"}
 *
 * Taking the lock is an atomic create: the holder's record is written to a temporary file in the
 * folder, then hard-linked to densetrain.lock (link fails with EEXIST if the lock exists, and a
 * reader never sees half a record; link is also atomic on NFS, where O_EXCL was not always).
 * A lock is stale when its holder is on this host and its process is gone (kill -9), or when its
 * lease has expired (a holder on another machine, or power loss). A stale lock is taken over
 * under a second, short-lived lock (`densetrain.lock.takeover`, created the same atomic way):
 * its holder checks that the lock file is still the stale record it judged, removes it, and then
 * links its own like any other taker. (Renaming the stale file away without that guard was
 * tried first: the race test found two winners, one having moved the other's fresh lock.) The
 * holder renews the lease every `renewMs` (a temporary file renamed over the lock), checking
 * each time that the lock is still its own (`lost` says when it is not).
 *
 * Why not proper-lockfile: it locks with a directory whose mtime is the lease, and records
 * neither host nor pid, so a process on the same host that died cannot be told from one that is
 * merely slow, and the refusal cannot name who holds the folder. The distributed workers (several
 * machines, one shared folder) need exactly that record.
 */
import { randomBytes } from 'node:crypto';
import { link, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const LOCK_FILE = 'densetrain.lock';
/** How long a lease lasts without renewal. */
export const DEFAULT_LEASE_MS = 30_000;
/** How often the holder renews it. */
export const DEFAULT_RENEW_MS = 5_000;

/** What the lock file holds. */
export interface LockRecord {
  host: string;
  pid: number;
  /** When the holder took the lock (ISO time). */
  startedAt: string;
  /** Last renewal (ISO time). */
  renewedAt: string;
  /** The lock is stale after this time unless renewed (ISO time). */
  leaseUntil: string;
  /** Unique per acquisition: tells this holder's record from any other. */
  token: string;
  /** What the holder is doing ('train', 'train --resume', 'compare member'), for messages. */
  purpose: string;
}

/** The folder is locked by a live holder. */
export class RunLockedError extends Error {
  override readonly name = 'RunLockedError';
  constructor(
    readonly folder: string,
    readonly holder: LockRecord | null,
  ) {
    super(`${folder} is in use by ${describeHolder(holder)}; wait for it to finish or stop it (a lock left by a process that died is taken over automatically)`);
  }
}

/** "process 1234 on host-a (train, since 2026-...; lease renewed 2 s ago)". */
export function describeHolder(holder: LockRecord | null, now = Date.now()): string {
  if (holder === null) return 'another process (its lock file cannot be read)';
  const ago = Math.max(0, Math.round((now - Date.parse(holder.renewedAt)) / 1000));
  return `process ${holder.pid} on ${holder.host} (${holder.purpose}, since ${holder.startedAt}; lease renewed ${ago} s ago)`;
}

export interface LockOptions {
  purpose?: string;
  leaseMs?: number;
  renewMs?: number;
  /** For tests and for other machines' views; defaults: this host, this process, Date.now. */
  host?: string;
  pid?: number;
  now?: () => number;
  /** Whether a process of this host is alive (default: signal 0). */
  isAlive?: (pid: number) => boolean;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Why a lock is stale, or null if its holder may still be working. */
export function staleReason(record: LockRecord, options: Pick<LockOptions, 'host' | 'now' | 'isAlive'> = {}): string | null {
  const host = options.host ?? hostname();
  const now = (options.now ?? Date.now)();
  if (record.host === host && record.pid !== process.pid && !(options.isAlive ?? processAlive)(record.pid)) {
    return `process ${record.pid} on ${host} is gone`;
  }
  const until = Date.parse(record.leaseUntil);
  if (!Number.isFinite(until) || until < now) return `its lease expired at ${record.leaseUntil}`;
  return null;
}

function isRecord(v: unknown): v is LockRecord {
  const r = v as Partial<LockRecord> | null;
  return (
    typeof r === 'object' && r !== null && typeof r.host === 'string' && Number.isSafeInteger(r.pid) && typeof r.startedAt === 'string' &&
    typeof r.renewedAt === 'string' && typeof r.leaseUntil === 'string' && typeof r.token === 'string' && typeof r.purpose === 'string'
  );
}

/** The lock record of a file; null if there is none; 'unreadable' if the file is not a lock record. */
async function readRecordAt(path: string): Promise<LockRecord | null | 'unreadable'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  try {
    const parsed: unknown = JSON.parse(text);
    return isRecord(parsed) ? parsed : 'unreadable';
  } catch {
    return 'unreadable';
  }
}

/** The lock record of a folder, or null if it is not locked (or the lock file is not a record). */
export async function readRunLock(folder: string): Promise<LockRecord | null> {
  const r = await readRecordAt(join(folder, LOCK_FILE));
  return r === 'unreadable' ? null : r;
}

/** Throws RunLockedError if a live holder has the folder locked (a quick check before slow work). */
export async function assertNotLocked(folder: string, options: LockOptions = {}): Promise<void> {
  const path = join(folder, LOCK_FILE);
  const record = await readRecordAt(path);
  if (record === null) return;
  if (record === 'unreadable') {
    if (await unreadableIsStale(path, options)) return;
    throw new RunLockedError(folder, null);
  }
  if (staleReason(record, options) === null) throw new RunLockedError(folder, record);
}

/** A lock file that is not a record (written by something else, or damaged) counts as stale once older than a lease. */
async function unreadableIsStale(path: string, options: LockOptions): Promise<boolean> {
  try {
    const st = await stat(path);
    return st.mtimeMs + (options.leaseMs ?? DEFAULT_LEASE_MS) < (options.now ?? Date.now)();
  } catch {
    return true;
  }
}

export interface RunLock {
  readonly folder: string;
  readonly record: LockRecord;
  /** The lock was taken over by someone else (this holder's lease lapsed); stop writing. */
  readonly lost: boolean;
  /** Renews the lease now (also done every renewMs); sets `lost` if the lock is no longer ours. */
  renew(): Promise<void>;
  /** Stops renewing and removes the lock file if it is still ours. */
  release(): Promise<void>;
}

/** A fresh temp file name beside the lock (written, then linked or renamed into place). */
function tempLockPath(folder: string): string {
  return join(folder, `.${LOCK_FILE}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * Puts `record` at `path` by hard-linking a temp file there (atomic: fails if a lock exists).
 * Rounds: each takes the lock, finds a live holder (RunLockedError), or clears a stale lock
 * (waiting a little while another process is clearing it). Does not check who won: the caller reads the lock back.
 */
async function placeLockFile(folder: string, path: string, record: LockRecord, options: LockOptions, now: () => number): Promise<void> {
  const temp = tempLockPath(folder);
  await writeFile(temp, `${JSON.stringify(record)}\n`);
  try {
    for (let attempt = 0; attempt < 40; attempt++) {
      try {
        await link(temp, path);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const existing = await readRecordAt(path);
      if (existing === null) continue; // released meanwhile
      if (existing === 'unreadable' ? !(await unreadableIsStale(path, options)) : staleReason(existing, options) === null) {
        throw new RunLockedError(folder, existing === 'unreadable' ? null : existing);
      }
      const cleared = await takeOver(path, existing === 'unreadable' ? null : existing.token, temp, now);
      if (!cleared) await new Promise((resolve) => setTimeout(resolve, 25));
    }
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/** The RunLock of a lock this process holds: renews the lease every `renewMs` until released or lost. */
function heldRunLock(folder: string, path: string, record: LockRecord, fresh: () => LockRecord, renewMs: number): RunLock {
  const token = record.token;
  let lost = false;
  let current = record;
  let renewing: Promise<void> = Promise.resolve();
  const renewOnce = async (): Promise<void> => {
    if (lost) return;
    const onDisk = await readRecordAt(path).catch(() => 'unreadable' as const);
    if (onDisk === null || onDisk === 'unreadable' || onDisk.token !== token) {
      lost = true;
      return;
    }
    current = fresh();
    const next = tempLockPath(folder);
    try {
      await writeFile(next, `${JSON.stringify(current)}\n`);
      await rename(next, path);
    } catch {
      await unlink(next).catch(() => undefined);
    }
  };
  const timer = setInterval(() => {
    renewing = renewing.then(renewOnce, renewOnce);
  }, renewMs);
  timer.unref();
  return {
    folder,
    get record() {
      return current;
    },
    get lost() {
      return lost;
    },
    renew: () => (renewing = renewing.then(renewOnce, renewOnce)),
    release: async () => {
      clearInterval(timer);
      await renewing.catch(() => undefined);
      const onDisk = await readRecordAt(path).catch(() => null);
      if (onDisk !== null && onDisk !== 'unreadable' && onDisk.token === token) await unlink(path).catch(() => undefined);
    },
  };
}

/**
 * Locks `folder` (which must exist) for this process, taking over a stale lock; throws
 * RunLockedError naming the holder if it is held.
 */
export async function acquireRunLock(folder: string, options: LockOptions = {}): Promise<RunLock> {
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  const now = options.now ?? Date.now;
  const path = join(folder, LOCK_FILE);
  const started = new Date(now()).toISOString();
  const token = randomBytes(16).toString('hex');
  const fresh = (): LockRecord => ({
    host: options.host ?? hostname(),
    pid: options.pid ?? process.pid,
    startedAt: started,
    renewedAt: new Date(now()).toISOString(),
    leaseUntil: new Date(now() + leaseMs).toISOString(),
    token,
    purpose: options.purpose ?? 'train',
  });
  const record = fresh();
  await placeLockFile(folder, path, record, options, now);
  const held = await readRecordAt(path);
  if (held === null || held === 'unreadable' || held.token !== token) throw new RunLockedError(folder, held === 'unreadable' ? null : held);
  return heldRunLock(folder, path, record, fresh, options.renewMs ?? DEFAULT_RENEW_MS);
}

/** A takeover in progress for longer than this was abandoned (its process died in those milliseconds). */
const TAKEOVER_STALE_MS = 10_000;

/**
 * Removes the stale lock at `path` whose token is `token` (null: an unreadable file), if it is
 * still that one. Only the process holding `<lock>.takeover` (created atomically, like the lock)
 * may remove a lock file, and it checks the token again while holding it, so a fresh lock that
 * replaced the stale one meanwhile is never removed. Returns false if another process is taking
 * over at the same moment (the caller waits and looks again).
 */
async function takeOver(path: string, token: string | null, ourRecordFile: string, now: () => number): Promise<boolean> {
  const mutex = `${path}.takeover`;
  try {
    await link(ourRecordFile, mutex);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const st = await stat(mutex).catch(() => null);
    if (st !== null && st.mtimeMs + TAKEOVER_STALE_MS < now()) await unlink(mutex).catch(() => undefined);
    return false;
  }
  try {
    const current = await readRecordAt(path);
    const same = token === null ? current === 'unreadable' : current !== null && current !== 'unreadable' && current.token === token;
    if (same) await unlink(path).catch(() => undefined);
    return true;
  } finally {
    await unlink(mutex).catch(() => undefined);
  }
}
