/**
 * A small safetensors writer and reader (F32 only), written for densetrain.
 *
 * Layout (https://github.com/huggingface/safetensors, "Format"):
 *   8 bytes   N, the header length, unsigned 64-bit little-endian
 *   N bytes   a UTF-8 JSON object: { "__metadata__": {string: string},
 *             "<name>": { "dtype": "F32", "shape": [...], "data_offsets": [begin, end] }, ... }
 *             padded with spaces so that 8 + N is a multiple of 8
 *   the tensor bytes, little-endian, offsets relative to the end of the header
 *
 * The writer stores the sha256 of the tensor bytes in __metadata__.sha256, and the sha256 of the
 * 8-byte prefix and the header (padding included) in __metadata__.header_sha256, computed with
 * that value's 64 hex digits written as zeros. The reader verifies both when present (files
 * written by PyTorch have neither), requires both in densetrain's own files (metadata format
 * 'densetrain-*', so a damaged key cannot switch the check off), and names the file in every error.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants as bufferConstants } from 'node:buffer';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { endianness, totalmem } from 'node:os';
import { FileReadError, readRegularFile, writingFile } from '../regular-file.js';

export interface TensorEntry {
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsContents {
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
}

/** Header bytes we accept before refusing a file as not-safetensors (guards against huge allocations). */
const MAX_HEADER = 100 * 1024 * 1024;

if (endianness() !== 'LE') {
  // Float32Array views use the platform's byte order; safetensors is little-endian.
  throw new Error('densetrain checkpoints need a little-endian platform');
}

export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
}

/** sha256 (hex) of the tensor bytes. */
export function tensorChecksum(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const HEADER_CHECKSUM_KEY = 'header_sha256';
const ZERO_DIGEST = '0'.repeat(64);
/** Where the header checksum's value sits in the JSON our writer produces (and the reader looks for). */
const HEADER_CHECKSUM_RE = /"header_sha256":"([0-9a-f]{64})"/;

/** sha256 (hex) of prefix + header with the header checksum's digits at `at` read as zeros. */
function headerChecksum(prefixAndHeader: Uint8Array, at: number): string {
  const copy = Buffer.from(prefixAndHeader);
  copy.write(ZERO_DIGEST, at, 'latin1');
  return tensorChecksum(copy);
}

// Declared as Uint8Array (a Buffer at run time): the public types must not need @types/node.
export function encodeSafetensors(tensors: Iterable<[string, TensorEntry]>, metadata: Record<string, string> = {}): Uint8Array {
  const list = [...tensors];
  const header: Record<string, unknown> = {};
  let offset = 0;
  const names = new Set<string>();
  for (const [name, t] of list) {
    if (name === '__metadata__' || names.has(name)) throw new RangeError(`tensor name ${JSON.stringify(name)} is reserved or repeated`);
    names.add(name);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new RangeError(`tensor ${name}: shape [${t.shape.join(', ')}] needs ${count} values, data has ${t.data.length}`);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + count * 4] };
    offset += count * 4;
  }
  const body = Buffer.alloc(offset);
  let at = 0;
  for (const [, t] of list) {
    body.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new TypeError(`metadata ${k} must be a string`);
    meta[k] = v;
  }
  meta['sha256'] = tensorChecksum(body);
  meta[HEADER_CHECKSUM_KEY] = ZERO_DIGEST;
  let json = Buffer.from(JSON.stringify({ __metadata__: meta, ...header }), 'utf8');
  const padded = Math.ceil((8 + json.length) / 8) * 8 - 8;
  if (padded > json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  const head = Buffer.concat([prefix, json]);
  // __metadata__ comes first and keys cannot repeat, so the first match is the one just written.
  const match = HEADER_CHECKSUM_RE.exec(head.toString('latin1'));
  if (!match) throw new Error('safetensors writer: header checksum placeholder not found');
  const digestAt = match.index + match[0].length - 65;
  head.write(headerChecksum(head, digestAt), digestAt, 'latin1');
  return Buffer.concat([head, body]);
}

function isIntArray(v: unknown, len?: number): v is number[] {
  return Array.isArray(v) && (len === undefined || v.length === len) && v.every((x) => Number.isSafeInteger(x) && x >= 0);
}

/** Parses and checks a safetensors file's bytes; `file` names it in errors. */
export function decodeSafetensors(bytes: Uint8Array, file: string): SafetensorsContents {
  const fail = (why: string): never => {
    throw new CheckpointError(`${file}: ${why}`);
  };
  if (bytes.length < 8) fail(`not a safetensors file (only ${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(Math.min(MAX_HEADER, bytes.length - 8))) {
    fail(`not a safetensors file, or truncated: header length ${headerLength} does not fit in ${bytes.length} bytes`);
  }
  const n = Number(headerLength);
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, n).toString('utf8'));
  } catch (error) {
    fail(`not a safetensors file: the header is not valid JSON (${(error as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('not a safetensors file: the header is not a JSON object');
  verifyHeaderChecksum(bytes.subarray(0, 8 + n), (header as Record<string, unknown>)['__metadata__'], fail);
  const dataStart = 8 + n;
  const dataLength = bytes.length - dataStart;
  const body = bytes.subarray(dataStart);
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorEntry>();
  const ranges: [number, number, string][] = [];
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('__metadata__ must be a map of strings');
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__.${k} must be a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const entry = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof entry !== 'object' || entry === null) fail(`tensor ${name}: entry must be an object`);
    if (entry.dtype !== 'F32') {
      fail(`tensor ${name} has dtype ${JSON.stringify(entry.dtype)}; densetrain reads F32 only (save float32 tensors, e.g. tensor.float())`);
    }
    if (!isIntArray(entry.shape)) fail(`tensor ${name}: shape must be a list of non-negative integers`);
    if (!isIntArray(entry.data_offsets, 2)) fail(`tensor ${name}: data_offsets must be [begin, end]`);
    const shape = entry.shape as number[];
    const [begin, end] = entry.data_offsets as [number, number];
    const count = shape.reduce((a, b) => a * b, 1);
    if (end < begin || end > dataLength) fail(`tensor ${name}: data_offsets [${begin}, ${end}] fall outside the ${dataLength} data bytes (truncated file?)`);
    if (end - begin !== count * 4) fail(`tensor ${name}: shape [${shape.join(', ')}] needs ${count * 4} bytes, data_offsets give ${end - begin}`);
    ranges.push([begin, end, name]);
    // Copy: the file's bytes need not be 4-byte aligned, and the result must outlive the buffer.
    const data = new Float32Array(count);
    new Uint8Array(data.buffer).set(body.subarray(begin, end));
    tensors.set(name, { shape, data });
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i]![0] < ranges[i - 1]![1]) fail(`tensors ${ranges[i - 1]![2]} and ${ranges[i]![2]} overlap`);
  }
  const expected = metadata['sha256'];
  if (expected !== undefined) {
    const actual = tensorChecksum(body);
    if (actual !== expected) {
      fail(`checksum mismatch: the tensor data is corrupt (sha256 ${actual}, the header records ${expected}); restore the file or train again`);
    }
  }
  return { tensors, metadata };
}

/**
 * Checks __metadata__.header_sha256 against the prefix and header bytes. Required in densetrain's
 * own files (and then the data checksum too), optional in others.
 */
function verifyHeaderChecksum(head: Uint8Array, meta: unknown, fail: (why: string) => never): void {
  const m = typeof meta === 'object' && meta !== null && !Array.isArray(meta) ? (meta as Record<string, unknown>) : {};
  const ours = typeof m['format'] === 'string' && m['format'].startsWith('densetrain-');
  const expected = m[HEADER_CHECKSUM_KEY];
  if (expected === undefined) {
    if (ours) fail('the header is corrupt: its checksum entry is missing (or the file predates header checksums); restore the file or train again');
    return;
  }
  const match = HEADER_CHECKSUM_RE.exec(Buffer.from(head.buffer, head.byteOffset, head.byteLength).toString('latin1'));
  if (typeof expected !== 'string' || !match || match[1] !== expected) {
    fail('the header is corrupt: its checksum entry is damaged; restore the file or train again');
  }
  const actual = headerChecksum(head, match!.index + match![0].length - 65);
  if (actual !== expected) {
    fail(`checksum mismatch: the header is corrupt (sha256 ${actual}, the header records ${expected as string}); restore the file or train again`);
  }
  if (ours && m['sha256'] === undefined) fail('the header is corrupt: the tensor data checksum entry is missing; restore the file or train again');
}

/**
 * The largest safetensors file read: what one Node Buffer can hold (the whole file is read into
 * one), and never more than half the machine's memory (the tensors are copied out of it).
 */
export function maxSafetensorsBytes(): number {
  return Math.min(bufferConstants.MAX_LENGTH, Math.floor(totalmem() / 2));
}

export async function readSafetensors(path: string): Promise<SafetensorsContents> {
  let bytes: Buffer;
  try {
    bytes = await readRegularFile(path, { maxBytes: maxSafetensorsBytes(), what: 'a safetensors file' });
  } catch (error) {
    if (error instanceof FileReadError) throw new CheckpointError(`${path}: cannot read (${error.problem})`);
    throw error;
  }
  return decodeSafetensors(bytes, path);
}

/** Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename. */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  // A failure (a full disk, say) names the file being written, not the temporary file.
  await writingFile(path, () => writeThroughTemp(path, bytes));
}

async function writeThroughTemp(path: string, bytes: Uint8Array): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(temp, 'w');
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  // Make the rename itself durable where the platform allows syncing a directory.
  try {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // Windows cannot open directories; the rename is still atomic.
  }
}

export async function writeSafetensors(path: string, tensors: Iterable<[string, TensorEntry]>, metadata: Record<string, string> = {}): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}
