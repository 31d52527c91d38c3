/**
 * The run folder's lifecycle. While a run is in progress, after a failure or an interrupt, the
 * folder holds INCOMPLETE (a few lines saying why); it is removed only once metrics.json,
 * model.safetensors and report.html are all written. So a folder without INCOMPLETE is a
 * finished run, and one with it never passes for one.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertNotLocked, LOCK_FILE } from '../train/run-lock.js';
import { writingFile } from '../regular-file.js';
import { UsageError } from './errors.js';
import { checkOutputFolder } from './output-paths.js';

export const INCOMPLETE_FILE = 'INCOMPLETE';
const RUN_FILES = ['metrics.json', 'model.safetensors', 'checkpoint.safetensors', 'report.html'];

/** runs/2025-01-31T14-05-09 (UTC), with -2, -3, ... if taken. */
export function defaultRunDir(now = new Date(), root = 'runs'): string {
  const stamp = now.toISOString().replace(/\.\d+Z$/, '').replace(/:/g, '-');
  let dir = join(root, stamp);
  for (let i = 2; existsSync(dir); i++) dir = join(root, `${stamp}-${i}`);
  return dir;
}

/**
 * Refuses a folder that already holds a run (unless resuming it), is a file, cannot be written,
 * or is locked by another process (unless `workersMayHold`: with --queue, the coordinator writes
 * no run folder and a worker training there is expected).
 */
export async function checkRunDir(dir: string, flag: string, resuming: boolean, workersMayHold = false): Promise<void> {
  await checkOutputFolder(dir, flag);
  let entries: string[] = [];
  try {
    entries = await readdir(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') throw new UsageError(`${flag} ${dir} is a file, not a folder`);
    if (code !== 'ENOENT') throw error;
  }
  // Refused at once (before the data is loaded) when another process is training here.
  if (entries.includes(LOCK_FILE) && !workersMayHold) await assertNotLocked(dir);
  if (!resuming) {
    const taken = RUN_FILES.filter((f) => entries.includes(f));
    if (taken.length > 0) {
      throw new UsageError(`${flag} ${dir} already holds a run (${taken.join(', ')}); choose another folder, or continue it with --resume ${dir}`);
    }
  }
}

/** checkRunDir, then creates the folder. */
export async function prepareRunDir(dir: string, flag: string, resuming: boolean): Promise<void> {
  await checkRunDir(dir, flag, resuming);
  await mkdir(dir, { recursive: true });
}

export async function markIncomplete(dir: string, why: string): Promise<void> {
  const file = join(dir, INCOMPLETE_FILE);
  await writingFile(file, () => writeFile(file, `This run is not complete: ${why}\n`));
}

export async function markComplete(dir: string): Promise<void> {
  await rm(join(dir, INCOMPLETE_FILE), { force: true });
}

/** Writes JSON through a temporary file and a rename, so a reader never sees half a file. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writingFile(path, async () => {
    try {
      await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
      await rename(tmp, path);
    } catch (error) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw error;
    }
  });
}
