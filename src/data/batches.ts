/**
 * Bytes -> floats, batch by batch, into buffers allocated once.
 *
 * A PixelScaling maps each of the 256 byte values to one float, so a 256-entry lookup table
 * does the conversion; tables are built once per scaling and reused, so fillBatch allocates
 * nothing in steady state. The conversion loop is kernels/gather.ts (shared with the wasm
 * backend's gatherRows); training fills batches through Kernels.gatherRows, so the native
 * backend converts in C++.
 */
import { gatherBytesJs, wordView } from '../kernels/gather.js';
import type { ImageSet, PixelScaling } from './types.js';

const UNIT_TABLE = buildTable({ kind: 'unit' });
const tableCache = new WeakMap<object, Float32Array>();
let lastMean = NaN;
let lastStd = NaN;
let lastTable: Float32Array = UNIT_TABLE;

function buildTable(scaling: PixelScaling): Float32Array {
  const t = new Float32Array(256);
  if (scaling.kind === 'unit') {
    for (let b = 0; b < 256; b++) t[b] = b / 255;
  } else {
    const { mean, std } = scaling;
    for (let b = 0; b < 256; b++) t[b] = (b / 255 - mean) / std;
  }
  return t;
}

function checkScaling(scaling: PixelScaling): void {
  if (scaling.kind === 'unit') return;
  if (scaling.kind !== 'standardize') throw new TypeError(`unknown pixel scaling kind '${(scaling as { kind: unknown }).kind}'`);
  if (!Number.isFinite(scaling.mean)) throw new RangeError(`scaling.mean must be finite, got ${scaling.mean}`);
  if (!Number.isFinite(scaling.std) || !(scaling.std > 0)) throw new RangeError(`scaling.std must be finite and > 0, got ${scaling.std}`);
}

/**
 * The 256-entry table for a scaling: table[b] is the float for byte b. Cached (by object and
 * by value), so repeated calls return the same array without allocating.
 */
export function scalingTable(scaling: PixelScaling): Float32Array {
  if (scaling.kind === 'unit') return UNIT_TABLE;
  if (scaling.mean === lastMean && scaling.std === lastStd) return lastTable;
  let t = tableCache.get(scaling);
  if (t === undefined) {
    checkScaling(scaling);
    t = buildTable(scaling);
    tableCache.set(scaling, t);
  }
  lastMean = scaling.mean;
  lastStd = scaling.std;
  lastTable = t;
  return t;
}

/** The float a byte becomes under a scaling (what fillBatch writes). */
export function scalePixel(byte: number, scaling: PixelScaling): number {
  return scalingTable(scaling)[byte & 255]!;
}

/**
 * Fills x (count x features, row-major) and y (class index as a float) with the images
 * indices[start .. start+count) of `set`. x and y may be longer than needed (buffers sized for
 * the largest batch); only the first count*features / count elements are written.
 * Throws RangeError on sizes or indices out of range, before writing anything.
 */
export function fillBatch(
  set: ImageSet,
  indices: Uint32Array,
  start: number,
  count: number,
  x: Float32Array,
  y: Float32Array,
  scaling: PixelScaling,
): void {
  const f = set.features;
  if (!Number.isInteger(start) || start < 0) throw new RangeError(`start must be a non-negative integer, got ${start}`);
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}`);
  if (start + count > indices.length) {
    throw new RangeError(`start + count (${start + count}) exceeds indices.length (${indices.length})`);
  }
  if (x.length < count * f) throw new RangeError(`x holds ${x.length} floats, the batch needs ${count} x ${f} = ${count * f}`);
  if (y.length < count) throw new RangeError(`y holds ${y.length} floats, the batch needs ${count}`);
  const n = set.count;
  for (let k = 0; k < count; k++) {
    if (indices[start + k]! >= n) throw new RangeError(`indices[${start + k}] = ${indices[start + k]} is out of range for a set of ${n}`);
  }
  gatherBytesJs(count, f, set.images, indices, start, scalingTable(scaling), x);
  fillLabels(set, indices, start, count, y);
}

/** y[k] = the class of image indices[start + k], as a float (indices already checked). */
export function fillLabels(set: ImageSet, indices: Uint32Array, start: number, count: number, y: Float32Array): void {
  const labels = set.labels;
  for (let k = 0; k < count; k++) y[k] = labels[indices[start + k]!]!;
}

/**
 * The pixel scaling for training: { kind: 'unit' }, or with `standardize` the mean and
 * (population) standard deviation of x / 255 over the given images only (the training
 * split; never the validation or test images). Computed exactly from a byte histogram.
 * A constant image set (std 0) gets std 1 so the scaling stays finite.
 */
export function computeScaling(set: ImageSet, indices: Uint32Array, standardize: boolean): PixelScaling {
  if (!standardize) return { kind: 'unit' };
  if (indices.length === 0) throw new RangeError('computeScaling needs at least one image');
  const hist = new Float64Array(256);
  const f = set.features;
  const images = set.images;
  // Integer counts in four interleaved histograms (no store-to-load chain on a popular byte),
  // flushed into the float64 totals before any count could reach 2^32.
  const part = new Uint32Array(1024);
  const flush = (): void => {
    for (let b = 0; b < 256; b++) hist[b]! += part[b]! + part[b + 256]! + part[b + 512]! + part[b + 768]!;
    part.fill(0);
  };
  const imagesPerFlush = Math.max(1, Math.floor(2 ** 31 / Math.max(f, 1)));
  const words = (f & 3) === 0 ? wordView(images) : null;
  const fw = f >>> 2;
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k]!;
    if (i >= set.count) throw new RangeError(`indices[${k}] = ${i} is out of range for a set of ${set.count}`);
    if (words !== null) {
      const begin = (i * fw) | 0;
      const end = (begin + fw) | 0;
      for (let s = begin; s < end; s++) {
        const w = words[s]!;
        part[w & 255]!++;
        part[256 + ((w >>> 8) & 255)]!++;
        part[512 + ((w >>> 16) & 255)]!++;
        part[768 + (w >>> 24)]!++;
      }
    } else {
      const src = i * f;
      for (let p = 0; p < f; p++) part[images[src + p]!]!++;
    }
    if ((k + 1) % imagesPerFlush === 0) flush();
  }
  flush();
  const total = indices.length * f;
  let sum = 0;
  for (let b = 0; b < 256; b++) sum += hist[b]! * (b / 255);
  const mean = sum / total;
  let sq = 0;
  for (let b = 0; b < 256; b++) {
    const d = b / 255 - mean;
    sq += hist[b]! * d * d;
  }
  const std = Math.sqrt(sq / total);
  return { kind: 'standardize', mean, std: std > 0 ? std : 1 };
}
