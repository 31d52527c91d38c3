/**
 * A dataset's fingerprint: what a checkpoint remembers of the data it was trained on, so that
 * resuming (or, later, a worker on another machine) can tell the same data from different data
 * of the same size. It is the sizes plus a sha256 of every label and pixel byte of both sets:
 * hashing all of MNIST (55 MB) takes a fraction of a second, so nothing is sampled.
 *
 * The name, path and class names are not part of it: the same bytes under another path are the
 * same data.
 */
import { createHash } from 'node:crypto';
import type { Dataset, ImageSet } from './types.js';

export interface DataFingerprint {
  /** How the hash is computed; fingerprints of different versions are not compared. */
  version: 1;
  trainCount: number;
  testCount: number;
  height: number;
  width: number;
  classes: number;
  /** sha256 (hex) of the sizes, then the train set's labels and images, then the test set's. */
  sha256: string;
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0, 0);
  return b;
}

function hashSet(hash: ReturnType<typeof createHash>, set: ImageSet): void {
  hash.update(u32(set.count)).update(u32(set.height)).update(u32(set.width));
  hash.update(set.labels.subarray(0, set.count));
  hash.update(set.images.subarray(0, set.count * set.features));
}

/** The fingerprint of a loaded dataset (train and test sets, before any validation split). */
export function fingerprintDataset(dataset: Pick<Dataset, 'train' | 'test' | 'classes'>): DataFingerprint {
  const hash = createHash('sha256');
  hash.update(u32(dataset.classes));
  hashSet(hash, dataset.train);
  hashSet(hash, dataset.test);
  return {
    version: 1,
    trainCount: dataset.train.count,
    testCount: dataset.test.count,
    height: dataset.train.height,
    width: dataset.train.width,
    classes: dataset.classes,
    sha256: hash.digest('hex'),
  };
}

/** null when `a` and `b` are the same data; else how they differ, in words. */
export function fingerprintDifference(a: DataFingerprint, b: DataFingerprint): string | null {
  if (a.version !== b.version) return `fingerprint versions differ (${a.version}, ${b.version})`;
  const sizes = (f: DataFingerprint) => `${f.trainCount} train / ${f.testCount} test images of ${f.height}x${f.width}, ${f.classes} classes`;
  if (sizes(a) !== sizes(b)) return `${sizes(a)} vs ${sizes(b)}`;
  if (a.sha256 !== b.sha256) return `same sizes (${sizes(a)}) but different pixel or label bytes (sha256 ${a.sha256.slice(0, 12)}... vs ${b.sha256.slice(0, 12)}...)`;
  return null;
}
