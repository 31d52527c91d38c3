/**
 * The run folder as the command line names it: a default name, and the checks on a folder
 * given with --out before anything is written there (its lifecycle: train/run-folder.ts).
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { assertNotLocked, LOCK_FILE } from '../train/run-lock.js';
import { UsageError } from './errors.js';
import { checkOutputFolder } from './output-paths.js';

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
