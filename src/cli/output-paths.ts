/**
 * Checks on where the CLI will write, done before any work starts: the place must be writable
 * (proved by creating and removing a probe there, which also catches /proc and read-only
 * mounts, where Node's recursive mkdir can spin for ever), and an output file must not be one of
 * the command's inputs.
 */
import { constants } from 'node:fs';
import { access, mkdtemp, readdir, rmdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { describeErrno } from '../regular-file.js';
import { UsageError } from './errors.js';

async function statOrNull(path: string) {
  try {
    return await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw error;
  }
}

/** Creates and removes a probe folder in `dir`; a UsageError naming the option if that fails. */
async function probe(dir: string, what: string): Promise<void> {
  try {
    await rmdir(await mkdtemp(join(dir, '.densetrain-probe-')));
  } catch (error) {
    throw new UsageError(`${what}: cannot write in ${dir} (${describeErrno(error)})`);
  }
}

/** The nearest existing ancestor of `path` (itself included). */
async function nearestExisting(path: string): Promise<{ path: string; isDirectory: boolean }> {
  let at = resolve(path);
  for (;;) {
    const st = await statOrNull(at);
    if (st) return { path: at, isDirectory: st.isDirectory() };
    const up = dirname(at);
    if (up === at) return { path: at, isDirectory: false };
    at = up;
  }
}

/** A folder the command will create or write into (`--out DIR`): not empty, and writable. */
export async function checkOutputFolder(dir: string, flag: string): Promise<void> {
  if (dir.trim() === '') throw new UsageError(`${flag} must not be empty`);
  const base = await nearestExisting(dir);
  if (!base.isDirectory) {
    throw new UsageError(base.path === resolve(dir) ? `${flag} ${dir} is a file, not a folder` : `${flag} ${dir}: ${base.path} is a file, not a folder`);
  }
  await probe(base.path, `${flag} ${dir}`);
}

/** Every regular file an input path stands for (a folder: the files directly in it). */
async function inputFiles(path: string): Promise<string[]> {
  const st = await statOrNull(path);
  if (!st) return [];
  if (!st.isDirectory()) return [path];
  const names = await readdir(path).catch(() => [] as string[]);
  return names.map((n) => join(path, n));
}

/**
 * A file the command will write (`--predictions FILE`): not empty, not a folder, in a writable
 * folder, and not any of `inputs` (files or folders the command reads; compared by inode, so a
 * link or another spelling of the same file is caught too).
 */
export async function checkOutputFile(file: string, flag: string, inputs: { path: string; option: string }[] = []): Promise<void> {
  if (file.trim() === '') throw new UsageError(`${flag} must not be empty`);
  const st = await statOrNull(file);
  if (st?.isDirectory()) throw new UsageError(`${flag} ${file} is a folder; give a file name`);
  if (st) {
    try {
      await access(file, constants.W_OK);
    } catch (error) {
      throw new UsageError(`${flag} ${file}: cannot write (${describeErrno(error)})`);
    }
    for (const input of inputs) {
      for (const candidate of await inputFiles(input.path)) {
        const other = await statOrNull(candidate);
        if (other && other.dev === st.dev && other.ino === st.ino) {
          throw new UsageError(`${flag} ${file} is ${candidate === input.path ? 'the' : 'a file of the'} ${input.option} ${input.path}; writing it would destroy an input`);
        }
      }
    }
  }
  const parent = await statOrNull(dirname(resolve(file)));
  if (!parent?.isDirectory()) throw new UsageError(`${flag} ${file}: the folder ${dirname(file)} does not exist`);
  await probe(dirname(resolve(file)), `${flag} ${file}`);
}
