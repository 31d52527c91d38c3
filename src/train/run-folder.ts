/**
 * The run folder's lifecycle. While a run is in progress, after a failure or an interrupt, the
 * folder holds INCOMPLETE (a few lines saying why); it is removed only once metrics.json,
 * model.safetensors and report.html are all written. So a folder without INCOMPLETE is a
 * finished run, and one with it never passes for one.
 */
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writingFile } from '../regular-file.js';

export const INCOMPLETE_FILE = 'INCOMPLETE';

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
