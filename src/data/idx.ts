/**
 * IDX reader (the format of the MNIST and Fashion-MNIST files), raw or gzip-compressed.
 *
 * Layout: a 4-byte magic (0x00 0x00 <type> <dims>), one big-endian uint32 per dimension,
 * then the data. We read unsigned bytes only: images 0x00000803 (count x rows x cols) and
 * labels 0x00000801 (count).
 *
 * Hostile input is an error, never a crash or a huge allocation: the header is checked
 * against the file's real size before any buffer for the data is made, gzip is detected by
 * its magic bytes (1f 8b), not by the file name, and decompression stops as soon as the
 * output exceeds what the header declares.
 */
import type { ImageSet } from './types.js';
import { DataError } from './errors.js';
import {
  MAX_DATA_BYTES,
  describeLeadingBytes,
  gunzipStream,
  isGzip,
  maxGunzipSize,
  openDataFile,
  readExactly,
  readWholeFile,
  type OpenedFile,
} from './files.js';

export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;

export type IdxKind = 'images' | 'labels';

export interface IdxImages {
  count: number;
  height: number;
  width: number;
  /** count * height * width bytes. */
  images: Uint8Array;
}

export interface IdxReadOptions {
  /** Largest decompressed file accepted (default MAX_DATA_BYTES, 1 GiB). */
  maxBytes?: number;
}

interface IdxHeader {
  kind: IdxKind;
  headerBytes: number;
  count: number;
  height: number;
  width: number;
  /** Data bytes the header declares (after the header). */
  dataBytes: number;
  /** "60000 images of 28x28" */
  what: string;
}

const TYPE_NAMES: Record<number, string> = {
  0x08: 'unsigned byte',
  0x09: 'signed byte',
  0x0b: 'int16',
  0x0c: 'int32',
  0x0d: 'float32',
  0x0e: 'float64',
};

function headerBytesFor(kind: IdxKind): number {
  return kind === 'images' ? 16 : 8;
}

/**
 * Parses and checks an IDX header. `head` holds the first bytes of the (decompressed) file;
 * `gz` only changes wording. Throws DataError for anything but a well-formed u8 header.
 */
function parseHeader(head: Uint8Array, kind: IdxKind, file: string, gz: boolean, maxBytes: number): IdxHeader {
  const expectDims = kind === 'images' ? 3 : 1;
  const need = headerBytesFor(kind);
  const after = gz ? ' (after gunzip)' : '';
  if (head.length < 4) {
    throw new DataError(file, `too short to be an IDX ${kind} file: ${head.length} bytes${after}, the header alone is ${need}`);
  }
  if (head[0] !== 0 || head[1] !== 0) {
    const notGz = !gz && /\.gz$/i.test(file) ? 'not gzip-compressed (does not start with 1f 8b) and ' : '';
    throw new DataError(
      file,
      `${notGz}not an IDX file: expected magic 00 00 08 0${expectDims}, found ${describeLeadingBytes(head)}${after}`,
    );
  }
  const type = head[2]!;
  const dims = head[3]!;
  if (type !== 0x08) {
    const tn = TYPE_NAMES[type];
    throw new DataError(
      file,
      `IDX element type 0x${type.toString(16).padStart(2, '0')}${tn ? ` (${tn})` : ' (unknown)'} is not supported: expected 0x08 (unsigned byte)`,
    );
  }
  if (dims !== expectDims) {
    const looksLike = dims === 3 ? ' (an image file?)' : dims === 1 ? ' (a label file?)' : '';
    throw new DataError(
      file,
      `IDX file has ${dims} dimension${dims === 1 ? '' : 's'}${looksLike}, expected ${expectDims} for ${kind} (magic 0x0000080${expectDims})`,
    );
  }
  if (head.length < need) {
    throw new DataError(file, `truncated header: ${head.length} bytes${after}, an IDX ${kind} header is ${need}`);
  }
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const count = dv.getUint32(4, false);
  let height = 1;
  let width = 1;
  if (kind === 'images') {
    height = dv.getUint32(8, false);
    width = dv.getUint32(12, false);
  }
  const what = kind === 'images' ? `${count} images of ${height}x${width}` : `${count} labels`;
  if (count === 0) throw new DataError(file, `header declares no ${kind} (count 0)`);
  if (kind === 'images' && (height === 0 || width === 0)) {
    throw new DataError(file, `header declares empty images (${height}x${width})`);
  }
  // Plain float64 arithmetic: exact up to 2^53, and anything near that is far over the cap anyway.
  const dataBytes = count * height * width;
  if (need + dataBytes > maxBytes) {
    throw new DataError(
      file,
      `header declares ${what} (${need + dataBytes} bytes), more than the ${maxBytes}-byte limit: corrupt header?`,
    );
  }
  return { kind, headerBytes: need, count, height, width, dataBytes, what };
}

/** Reads an uncompressed IDX file whose first bytes are `head`: the size must match the header exactly. */
async function readRawIdx(opened: OpenedFile, file: string, head: Uint8Array, kind: IdxKind, maxBytes: number): Promise<{ header: IdxHeader; data: Uint8Array }> {
  const header = parseHeader(head, kind, file, false, maxBytes);
  const declared = header.headerBytes + header.dataBytes;
  if (opened.size < declared) {
    throw new DataError(
      file,
      `truncated: header declares ${header.what} (${declared} bytes) but the file holds ${opened.size}`,
    );
  }
  if (opened.size > declared) {
    throw new DataError(
      file,
      `header declares ${header.what} (${declared} bytes) but the file holds ${opened.size}: ${opened.size - declared} unexpected trailing bytes`,
    );
  }
  const data = new Uint8Array(header.dataBytes);
  await readExactly(opened, file, data, 0, header.dataBytes, header.headerBytes);
  return { header, data };
}

/**
 * Reads a gzip IDX file. The compressed file is small enough to hold; the output is what needs
 * bounding: the header is checked as soon as it decompresses, and the data may not outgrow it.
 */
async function readGzipIdx(opened: OpenedFile, file: string, kind: IdxKind, maxBytes: number): Promise<{ header: IdxHeader; data: Uint8Array }> {
  const compressed = await readWholeFile(opened, file, maxBytes);
  const need = headerBytesFor(kind);
  const headBuf = new Uint8Array(need);
  let headFill = 0;
  let header: IdxHeader | undefined;
  let data: Uint8Array | undefined;
  let dataFill = 0;
  const total = await gunzipStream(compressed, file, (chunk) => {
    let at = 0;
    if (header === undefined) {
      const take = Math.min(need - headFill, chunk.length);
      headBuf.set(chunk.subarray(0, take), headFill);
      headFill += take;
      at = take;
      if (headFill < need && headFill >= 4) {
        // Validate the magic as soon as we have it, before waiting for more output.
        const magicOnly = headBuf.subarray(0, headFill);
        if (magicOnly[0] !== 0 || magicOnly[1] !== 0 || magicOnly[2] !== 0x08) {
          parseHeader(magicOnly, kind, file, true, maxBytes);
        }
      }
      if (headFill < need) return;
      header = parseHeader(headBuf, kind, file, true, maxBytes);
      const declared = header.headerBytes + header.dataBytes;
      if (declared > maxGunzipSize(compressed.length)) {
        throw new DataError(
          file,
          `truncated or corrupt: header declares ${header.what} (${declared} bytes) but ${compressed.length} compressed bytes cannot hold that much`,
        );
      }
      data = new Uint8Array(header.dataBytes);
    }
    const rest = chunk.length - at;
    if (rest <= 0) return;
    const room = header.dataBytes - dataFill;
    if (rest > room) {
      throw new DataError(
        file,
        `header declares ${header.what} (${header.headerBytes + header.dataBytes} bytes) but the data decompresses to more than that; stopped (corrupt file or gzip bomb?)`,
      );
    }
    data!.set(at === 0 ? chunk : chunk.subarray(at), dataFill);
    dataFill += rest;
  });
  if (header === undefined) {
    parseHeader(headBuf.subarray(0, headFill), kind, file, true, maxBytes);
    // parseHeader throws for any short header; this line is never reached.
    throw new DataError(file, `truncated header after gunzip (${total} bytes)`);
  }
  if (dataFill < header.dataBytes) {
    throw new DataError(
      file,
      `truncated: header declares ${header.what} (${header.headerBytes + header.dataBytes} bytes) but the file decompresses to ${total}`,
    );
  }
  return { header, data: data! };
}

/** Reads an IDX file (raw or gzip) of the given kind; returns its header and data bytes. */
async function readIdx(file: string, kind: IdxKind, options: IdxReadOptions = {}): Promise<{ header: IdxHeader; data: Uint8Array }> {
  const maxBytes = options.maxBytes ?? MAX_DATA_BYTES;
  const opened = await openDataFile(file);
  try {
    if (opened.size === 0) throw new DataError(file, 'empty file (0 bytes)');
    const head = new Uint8Array(Math.min(opened.size, 16));
    await readExactly(opened, file, head, 0, head.length, 0);
    return isGzip(head) ? await readGzipIdx(opened, file, kind, maxBytes) : await readRawIdx(opened, file, head, kind, maxBytes);
  } finally {
    await opened.handle.close().catch(() => undefined);
  }
}

/** Reads an IDX image file (magic 0x00000803, unsigned bytes, count x rows x cols). */
export async function readIdxImages(file: string, options?: IdxReadOptions): Promise<IdxImages> {
  const { header, data } = await readIdx(file, 'images', options);
  return { count: header.count, height: header.height, width: header.width, images: data };
}

/** Reads an IDX label file (magic 0x00000801, unsigned bytes, count). */
export async function readIdxLabels(file: string, options?: IdxReadOptions): Promise<Uint8Array> {
  const { data } = await readIdx(file, 'labels', options);
  return data;
}

/** Throws a DataError for the first label >= classes. */
export function checkLabels(labels: Uint8Array, classes: number, file: string): void {
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! >= classes) {
      throw new DataError(
        file,
        `label ${labels[i]} at index ${i} is out of range: ${classes} classes, labels must be 0-${classes - 1}`,
      );
    }
  }
}

/** The largest label + 1 (the class count a label file implies). */
export function impliedClasses(labels: Uint8Array): number {
  let max = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i]! > max) max = labels[i]!;
  return max + 1;
}

/**
 * Reads an image file and its label file into an ImageSet, checking that the counts agree
 * and (when `classes` is given) that every label is below it.
 */
export async function readIdxPair(
  imagesFile: string,
  labelsFile: string,
  classes?: number,
  options?: IdxReadOptions,
): Promise<ImageSet> {
  const [img, labels] = await Promise.all([readIdxImages(imagesFile, options), readIdxLabels(labelsFile, options)]);
  if (img.count !== labels.length) {
    throw new DataError(
      labelsFile,
      `holds ${labels.length} labels but ${imagesFile} holds ${img.count} images: the counts must be equal`,
    );
  }
  if (classes !== undefined) checkLabels(labels, classes, labelsFile);
  return {
    count: img.count,
    height: img.height,
    width: img.width,
    features: img.height * img.width,
    images: img.images,
    labels,
  };
}

/** Encodes an IDX image file (uncompressed). For tests, fixtures and exports. */
export function encodeIdxImages(count: number, height: number, width: number, images: Uint8Array): Uint8Array {
  if (images.length !== count * height * width) throw new RangeError('images.length must be count * height * width');
  const out = new Uint8Array(16 + images.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, IDX_IMAGES_MAGIC, false);
  dv.setUint32(4, count, false);
  dv.setUint32(8, height, false);
  dv.setUint32(12, width, false);
  out.set(images, 16);
  return out;
}

/** Encodes an IDX label file (uncompressed). */
export function encodeIdxLabels(labels: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + labels.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, IDX_LABELS_MAGIC, false);
  dv.setUint32(4, labels.length, false);
  out.set(labels, 8);
  return out;
}
