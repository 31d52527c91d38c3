/**
 * Opening and reading the files densetrain is given (config files, models, checkpoints, data)
 * so that a special file can neither hang nor exhaust memory.
 *
 * A FIFO opened for reading blocks until a writer appears (for ever, in a thread of libuv's pool
 * that the process then waits on), and /dev/zero or /dev/urandom never end. So every path is
 * opened with O_NONBLOCK (which makes open() of a FIFO return at once and changes nothing for a
 * regular file), checked with fstat on the open descriptor (no race between check and use) to
 * be a regular file, and read with a byte bound chosen by the caller for what the file claims to be.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { firstLine } from './first-line.js';

/** Why a path cannot be read; `message` is "<path>: <problem>" (callers wrap it in their own error type). */
export class FileReadError extends Error {
  override readonly name = 'FileReadError';
  constructor(
    readonly path: string,
    readonly problem: string,
    readonly code?: string,
  ) {
    super(`${path}: ${problem}`);
  }
}

/** What the file's type is, in words, for messages. */
function kindOf(st: { isDirectory(): boolean; isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean }): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a named pipe (FIFO)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** One short phrase for an fs error code. */
export function describeErrno(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  switch (e?.code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory, expected a file';
    case 'ENOTDIR':
      return 'a parent path is not a directory';
    case 'EMFILE':
    case 'ENFILE':
      return 'too many open files';
    case 'ELOOP':
      return 'too many symbolic links';
    case 'ENOSPC':
      return 'no space left on the device';
    case 'EDQUOT':
      return 'disk quota exceeded';
    case 'EROFS':
      return 'read-only file system';
    default:
      return e?.message ? firstLine(String(e.message)) : String(error);
  }
}

const READ_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

export interface OpenedRegularFile {
  handle: FileHandle;
  size: number;
}

/**
 * Opens `path` for reading without blocking and checks it is a regular file of at most
 * `maxBytes` (`what` names it in the size message: 'a config file', 'a model file').
 */
export async function openRegularFile(path: string, limit: { maxBytes: number; what: string }): Promise<OpenedRegularFile> {
  let handle: FileHandle;
  try {
    handle = await open(path, READ_FLAGS);
  } catch (error) {
    throw new FileReadError(path, describeErrno(error), (error as NodeJS.ErrnoException).code);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new FileReadError(path, `is ${kindOf(st)}, expected a regular file`, st.isDirectory() ? 'EISDIR' : 'ENOTREG');
    if (st.size > limit.maxBytes) {
      throw new FileReadError(path, `too large for ${limit.what}: ${st.size} bytes, the limit is ${limit.maxBytes}`, 'EFBIG');
    }
    return { handle, size: st.size };
  } catch (error) {
    await handle.close().catch(() => undefined);
    if (error instanceof FileReadError) throw error;
    throw new FileReadError(path, describeErrno(error), (error as NodeJS.ErrnoException).code);
  }
}

/** The whole of a regular file of at most `maxBytes`, or a FileReadError naming the path. */
export async function readRegularFile(path: string, limit: { maxBytes: number; what: string }): Promise<Buffer> {
  const { handle, size } = await openRegularFile(path, limit);
  try {
    const bytes = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      const { bytesRead } = await handle.read(bytes, done, size - done, done);
      if (bytesRead === 0) throw new FileReadError(path, `the file shrank while being read (${done} of ${size} bytes)`);
      done += bytesRead;
    }
    return bytes;
  } catch (error) {
    if (error instanceof FileReadError) throw error;
    throw new FileReadError(path, `cannot read: ${describeErrno(error)}`, (error as NodeJS.ErrnoException).code);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** A write that failed (disk full, permission, read-only file system), naming the file being written. */
export class FileWriteError extends Error {
  override readonly name = 'FileWriteError';
  readonly code: string | undefined;
  constructor(
    readonly path: string,
    cause: unknown,
  ) {
    super(`${path}: cannot write (${describeErrno(cause)})`, { cause });
    this.code = (cause as NodeJS.ErrnoException)?.code;
  }
}

/** Runs a write of `path`; any failure becomes a FileWriteError naming it. */
export async function writingFile<T>(path: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    throw error instanceof FileWriteError ? error : new FileWriteError(path, error);
  }
}
