/**
 * Small generated datasets for the data tests: IDX files (raw and gzip), CSV files, and their
 * corrupt variants, each written into a fresh temp directory. The encoders here are written
 * independently of src/data so a reader bug cannot hide behind a matching writer bug.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Rng } from '../../src/rng.js';

export interface RawSet {
  count: number;
  height: number;
  width: number;
  images: Uint8Array;
  labels: Uint8Array;
}

/** A fresh temp directory; remove it with cleanup() (afterEach / afterAll). */
export function tempDir(prefix = 'densetrain-data-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A deterministic synthetic set: every class appears (label i % classes, then shuffled),
 * pixels span 0..255 (pixel 0 of image 0 is 0, pixel 1 is 255).
 */
export function syntheticSet(count: number, height = 4, width = 4, classes = 10, seed = 1): RawSet {
  const rng = new Rng(seed);
  const features = height * width;
  const images = new Uint8Array(count * features);
  for (let i = 0; i < images.length; i++) images[i] = rng.int(256);
  if (images.length >= 2) {
    images[0] = 0;
    images[1] = 255;
  }
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) labels[i] = i % classes;
  for (let i = count - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = labels[i]!;
    labels[i] = labels[j]!;
    labels[j] = t;
  }
  return { count, height, width, images, labels };
}

function u32be(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0, 0);
  return b;
}

/** IDX image bytes; magic, count and dims can be overridden to build corrupt headers. */
export function idxImages(
  set: Pick<RawSet, 'count' | 'height' | 'width' | 'images'>,
  over: { magic?: number; count?: number; height?: number; width?: number } = {},
): Buffer {
  return Buffer.concat([
    u32be(over.magic ?? 0x00000803),
    u32be(over.count ?? set.count),
    u32be(over.height ?? set.height),
    u32be(over.width ?? set.width),
    Buffer.from(set.images),
  ]);
}

export function idxLabels(labels: Uint8Array, over: { magic?: number; count?: number } = {}): Buffer {
  return Buffer.concat([u32be(over.magic ?? 0x00000801), u32be(over.count ?? labels.length), Buffer.from(labels)]);
}

export function gz(bytes: Uint8Array): Buffer {
  return gzipSync(bytes);
}

export const IDX_NAMES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

/** Writes the four IDX files of (train, test) into dir (gzip-compressed with a .gz name when gzip). */
export function writeIdxDataset(
  dir: string,
  train: RawSet,
  test: RawSet,
  opts: { gzip?: boolean; omit?: keyof typeof IDX_NAMES } = {},
): Record<keyof typeof IDX_NAMES, string> {
  mkdirSync(dir, { recursive: true });
  const enc = (b: Buffer): Buffer => (opts.gzip ? gz(b) : b);
  const ext = opts.gzip ? '.gz' : '';
  const contents: Record<keyof typeof IDX_NAMES, Buffer> = {
    trainImages: idxImages(train),
    trainLabels: idxLabels(train.labels),
    testImages: idxImages(test),
    testLabels: idxLabels(test.labels),
  };
  const paths = {} as Record<keyof typeof IDX_NAMES, string>;
  for (const key of Object.keys(IDX_NAMES) as (keyof typeof IDX_NAMES)[]) {
    const p = join(dir, IDX_NAMES[key] + ext);
    paths[key] = p;
    if (opts.omit === key) continue;
    writeFileSync(p, enc(contents[key]));
  }
  return paths;
}

export interface CsvStyle {
  header?: boolean;
  crlf?: boolean;
  /** Spaces around every field. */
  spaces?: boolean;
  /** Blank lines appended at the end. */
  trailingBlank?: number;
  bom?: boolean;
}

/** The set as CSV text: label, then pixels, one image per row. */
export function csvText(set: RawSet, style: CsvStyle = {}): string {
  const f = set.height * set.width;
  const nl = style.crlf ? '\r\n' : '\n';
  const sep = style.spaces ? ' , ' : ',';
  const lines: string[] = [];
  if (style.header) lines.push(['label', ...Array.from({ length: f }, (_, i) => `pixel${i + 1}`)].join(sep));
  for (let i = 0; i < set.count; i++) {
    const row = [String(set.labels[i])];
    for (let p = 0; p < f; p++) row.push(String(set.images[i * f + p]));
    lines.push((style.spaces ? '  ' : '') + row.join(sep) + (style.spaces ? ' \t' : ''));
  }
  let text = lines.join(nl) + nl;
  for (let k = 0; k < (style.trailingBlank ?? 0); k++) text += (k % 2 === 0 ? '' : '   ') + nl;
  return (style.bom ? '\ufeff' : '') + text;
}

export function writeText(dir: string, name: string, text: string | Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
