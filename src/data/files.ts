/**
 * File access shared by the IDX and CSV readers: open + stat with one-line errors, gzip
 * detection by magic bytes (never by name), and gunzip with a hard cap on the output so a
 * gzip bomb cannot exhaust memory.
 */
import type { FileHandle } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { FileReadError, openRegularFile } from '../regular-file.js';
import { DataError, describeFsError } from './errors.js';
import { firstLine } from '../first-line.js';

/** Largest data file (decompressed) any reader accepts: 1 GiB. MNIST's training images are 47 MB. */
export const MAX_DATA_BYTES = 1 << 30;

/**
 * Deflate cannot expand data by more than about 1032:1, so a gzip file of n bytes cannot
 * honestly decompress to more than this many bytes (with slack for headers).
 */
export function maxGunzipSize(compressedBytes: number): number {
  return compressedBytes * 1040 + 1024;
}

export function isGzip(head: Uint8Array): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

export interface OpenedFile {
  handle: FileHandle;
  size: number;
}

/**
 * Opens a regular file for reading; every failure is a DataError naming the file. A FIFO or a
 * device is refused at once (opened without blocking, checked with fstat): it could hang or
 * never end.
 */
export async function openDataFile(file: string): Promise<OpenedFile> {
  try {
    return await openRegularFile(file, { maxBytes: Number.MAX_SAFE_INTEGER, what: 'a data file' });
  } catch (e) {
    if (!(e instanceof FileReadError)) throw e;
    if (e.code === 'EISDIR') throw new DataError(file, 'is a directory, expected a file');
    if (e.code === 'ENOTREG') throw new DataError(file, e.problem);
    throw new DataError(file, `cannot open: ${e.problem}`);
  }
}

/** Reads exactly `length` bytes at `position` into `into` (at `offset`), or fails with a DataError. */
export async function readExactly(
  opened: OpenedFile,
  file: string,
  into: Uint8Array,
  offset: number,
  length: number,
  position: number,
): Promise<void> {
  let done = 0;
  while (done < length) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await opened.handle.read(into, offset + done, length - done, position + done));
    } catch (e) {
      throw new DataError(file, `cannot read: ${describeFsError(e)}`);
    }
    if (bytesRead === 0) {
      throw new DataError(file, `the file shrank while being read (${position + done} of ${position + length} bytes)`);
    }
    done += bytesRead;
  }
}

/** Reads the whole file (at most `maxBytes`) into memory. */
export async function readWholeFile(opened: OpenedFile, file: string, maxBytes = MAX_DATA_BYTES): Promise<Uint8Array> {
  if (opened.size > maxBytes) {
    throw new DataError(file, `too large: ${opened.size} bytes, the limit is ${maxBytes}`);
  }
  const bytes = new Uint8Array(opened.size);
  await readExactly(opened, file, bytes, 0, opened.size, 0);
  return bytes;
}

/** One line describing a zlib failure. */
export function describeZlibError(e: unknown, producedBytes: number): string {
  const err = e as NodeJS.ErrnoException;
  const msg = firstLine(e);
  if (err?.code === 'Z_BUF_ERROR' || /unexpected end/i.test(msg)) {
    return `gzip data cut short (unexpected end of file after ${producedBytes} decompressed bytes): the file is incomplete, download it again`;
  }
  return `corrupt gzip data (zlib: ${msg})`;
}

/**
 * Decompresses `compressed` in a stream. `sink` receives each chunk of output and may throw
 * (a DataError) to stop early: that is how callers cap the output at the size they expect,
 * so nothing beyond that is ever held in memory. zlib errors become DataErrors.
 */
export async function gunzipStream(
  compressed: Uint8Array,
  file: string,
  sink: (chunk: Uint8Array) => void,
): Promise<number> {
  const gunzip = createGunzip({ chunkSize: 64 * 1024 });
  gunzip.end(compressed);
  let produced = 0;
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      produced += chunk.length;
      sink(chunk);
    }
  } catch (e) {
    gunzip.destroy();
    if (e instanceof DataError) throw e;
    throw new DataError(file, describeZlibError(e, produced));
  }
  return produced;
}

/** Gunzips into a fresh buffer, refusing output larger than `maxBytes`. */
export async function gunzipCapped(compressed: Uint8Array, file: string, maxBytes = MAX_DATA_BYTES): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  await gunzipStream(compressed, file, (chunk) => {
    total += chunk.length;
    if (total > maxBytes) {
      throw new DataError(file, `decompresses to more than ${maxBytes} bytes, the limit; refusing to go on (a gzip bomb?)`);
    }
    chunks.push(chunk);
  });
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Hex dump of the first bytes plus a hint when they look like text (an HTML error page, say). */
export function describeLeadingBytes(head: Uint8Array): string {
  const n = Math.min(head.length, 4);
  const hex = Array.from(head.subarray(0, n), (b) => b.toString(16).padStart(2, '0')).join(' ');
  let hint = '';
  const printable = head.subarray(0, Math.min(head.length, 16));
  if (printable.length > 0 && printable.every((b) => (b >= 0x20 && b < 0x7f) || b === 0x0a || b === 0x0d || b === 0x09)) {
    const text = Buffer.from(printable).toString('latin1').replace(/\s+/g, ' ').trim();
    hint = /^<(!doctype|html|\?xml)/i.test(text)
      ? ` ("${text}..." looks like an HTML/XML page, not data: a failed download?)`
      : ` ("${text}..." looks like text)`;
  }
  return `${hex}${hint}`;
}
