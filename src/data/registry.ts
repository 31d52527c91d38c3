/**
 * Dataset lookup: `loadDataset(spec)` turns what the user typed (--data) into a Dataset.
 *
 * spec is one of
 *  - 'mnist-sample' (the default): 10,000 MNIST digits shipped in data/mnist-sample/, fixed 8,000/2,000 split;
 *  - 'mnist', 'fashion-mnist': the four standard IDX files, searched in order in
 *      $DENSETRAIN_DATA/<name>, $DENSETRAIN_DATA, <cache>/<name> (<cache> = $XDG_CACHE_HOME/densetrain
 *      or ~/.cache/densetrain, where `densetrain data download` puts them), and for fashion-mnist
 *      /usr/share/datasets/fashion-mnist (Debian/Ubuntu package dataset-fashion-mnist);
 *  - a directory holding the four IDX files (raw or .gz), or a train CSV and a test CSV
 *      (train.csv/test.csv, mnist_train.csv/mnist_test.csv, fashion-mnist_train.csv/..., .csv.gz too);
 *  - a single CSV file. It has no test set of its own, so a fixed, stratified 20% of its rows
 *      (as for mnist-sample; seed MNIST_SAMPLE_SPLIT_SEED, whatever the training seed) is held out as the test set and the
 *      rest is the training set; Dataset.notes says so, and so does Dataset.source. We never report a
 *      "test" accuracy on rows the model trained on.
 * A known name wins over a same-named directory in the working directory: write ./mnist for that.
 * Note: $DENSETRAIN_DATA itself holding four IDX files serves whichever of mnist / fashion-mnist is
 * asked for (the files do not say which they are); use the <name>/ subdirectories to keep both.
 */
import { readdir, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { Rng } from '../rng.js';
import type { Dataset, ImageSet } from './types.js';
import { DataError, describeFsError } from './errors.js';
import { impliedClasses, readIdxPair } from './idx.js';
import { readCsvFile } from './csv.js';
import {
  DIGIT_CLASS_NAMES,
  MNIST_SAMPLE_IMAGES,
  MNIST_SAMPLE_LABELS,
  MNIST_SAMPLE_SPLIT_SEED,
  loadMnistSample,
  mnistSampleDir,
} from './mnist-sample.js';
import { splitIndices, subsetImageSet } from './split.js';
import { openDataFile, readExactly } from './files.js';

export type NamedDataset = 'mnist-sample' | 'mnist' | 'fashion-mnist';
export const DATASET_NAMES: readonly NamedDataset[] = ['mnist-sample', 'mnist', 'fashion-mnist'];
export const DEFAULT_DATASET: NamedDataset = 'mnist-sample';

export const FASHION_CLASS_NAMES: readonly string[] = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

/** Fraction of a single CSV file held out as its test set. */
export const SINGLE_CSV_TEST_FRACTION = 0.2;

export interface LoadOptions {
  /**
   * The training seed. Accepted so callers can pass their config through, and deliberately
   * NOT used for test splits: those are fixed so test sets are comparable across runs.
   */
  seed?: number;
  /** Seed of the fixed test split of mnist-sample and single CSV files (default MNIST_SAMPLE_SPLIT_SEED). */
  testSplitSeed?: number;
  /** Environment to read DENSETRAIN_DATA / XDG_CACHE_HOME from (default process.env). */
  env?: Record<string, string | undefined>;
  /** Home directory (default os.homedir()). */
  homeDir?: string;
  /** Root of system dataset packages (default /usr/share/datasets); null to skip it. */
  systemDataDir?: string | null;
}

export interface Searched {
  dir: string;
  /** Why it was not used: 'not set', 'missing', 'incomplete: ...', or undefined when used. */
  status: string;
}

// ---------------------------------------------------------------------------------------------
// IDX file names

export type IdxRole = 'trainImages' | 'trainLabels' | 'testImages' | 'testLabels';

export const IDX_FILE_NAMES: Record<IdxRole, string> = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
};
const ROLES: readonly IdxRole[] = ['trainImages', 'trainLabels', 'testImages', 'testLabels'];

/** Names a role's file may have: the standard name, the 'train-images.idx3-ubyte' variant some unpackers make, each raw or .gz (raw preferred). */
function candidateNames(role: IdxRole): string[] {
  const std = IDX_FILE_NAMES[role];
  const dotted = std.replace(/-(idx[13]-ubyte)$/, '.$1');
  return [std, `${std}.gz`, dotted, `${dotted}.gz`];
}

export interface IdxLocation {
  dir: string;
  files: Partial<Record<IdxRole, string>>;
  missing: string[];
}

async function listDir(dir: string): Promise<Set<string> | undefined> {
  try {
    return new Set(await readdir(dir));
  } catch {
    return undefined;
  }
}

/** Which of the four IDX files a directory holds. undefined if the directory cannot be read. */
export async function findIdxFiles(dir: string): Promise<IdxLocation | undefined> {
  const names = await listDir(dir);
  if (names === undefined) return undefined;
  const files: Partial<Record<IdxRole, string>> = {};
  const missing: string[] = [];
  for (const role of ROLES) {
    const hit = candidateNames(role).find((n) => names.has(n));
    if (hit !== undefined) files[role] = join(dir, hit);
    else missing.push(`${IDX_FILE_NAMES[role]}[.gz]`);
  }
  return { dir, files, missing };
}

// ---------------------------------------------------------------------------------------------
// Search paths

/** The per-user cache root: $XDG_CACHE_HOME/densetrain or ~/.cache/densetrain. */
export function cacheRoot(env: Record<string, string | undefined> = process.env, home: string = homedir()): string {
  const xdg = env.XDG_CACHE_HOME;
  return xdg !== undefined && xdg !== '' ? join(xdg, 'densetrain') : join(home, '.cache', 'densetrain');
}

/** Where `densetrain data download <name>` puts a dataset by default. */
export function defaultDownloadDir(name: string, options: LoadOptions = {}): string {
  return join(cacheRoot(options.env ?? process.env, options.homeDir ?? homedir()), name);
}

/** The directories searched for a named IDX dataset, in order. */
export function datasetSearchDirs(name: 'mnist' | 'fashion-mnist', options: LoadOptions = {}): string[] {
  const env = options.env ?? process.env;
  const dirs: string[] = [];
  const root = env.DENSETRAIN_DATA;
  if (root !== undefined && root !== '') dirs.push(join(root, name), root);
  dirs.push(defaultDownloadDir(name, options));
  const sys = options.systemDataDir === undefined ? '/usr/share/datasets' : options.systemDataDir;
  if (name === 'fashion-mnist' && sys !== null) dirs.push(join(sys, 'fashion-mnist'));
  return dirs;
}

/** Finds a complete set of the four IDX files for a named dataset. */
export async function locateNamedDataset(
  name: 'mnist' | 'fashion-mnist',
  options: LoadOptions = {},
): Promise<{ found?: IdxLocation; searched: Searched[] }> {
  const searched: Searched[] = [];
  const env = options.env ?? process.env;
  if (env.DENSETRAIN_DATA === undefined || env.DENSETRAIN_DATA === '') {
    searched.push({ dir: '$DENSETRAIN_DATA', status: 'not set' });
  }
  for (const dir of datasetSearchDirs(name, options)) {
    const loc = await findIdxFiles(dir);
    if (loc === undefined) {
      searched.push({ dir, status: 'missing' });
      continue;
    }
    if (loc.missing.length === 0) return { found: loc, searched };
    if (loc.missing.length === 4) searched.push({ dir, status: 'no IDX files' });
    else searched.push({ dir, status: `incomplete: missing ${loc.missing.join(', ')}` });
  }
  return { searched };
}

function howToGet(name: 'mnist' | 'fashion-mnist', options: LoadOptions): string {
  const ways = [`run \`densetrain data download ${name}\` (saves to ${defaultDownloadDir(name, options)})`];
  if (name === 'fashion-mnist') ways.push('`apt-get install dataset-fashion-mnist` (Debian/Ubuntu)');
  ways.push('set DENSETRAIN_DATA to a directory holding the four IDX files (or a <name>/ subdirectory of them)');
  return ways.join(', or ');
}

// ---------------------------------------------------------------------------------------------
// Loading

function classNamesFor(classes: number, fashion: boolean): string[] {
  if (classes === 10) return [...(fashion ? FASHION_CLASS_NAMES : DIGIT_CLASS_NAMES)];
  return Array.from({ length: classes }, (_, i) => String(i));
}

function checkSameShape(train: ImageSet, test: ImageSet, testFile: string): void {
  if (train.height !== test.height || train.width !== test.width) {
    throw new DataError(
      testFile,
      `images are ${test.height}x${test.width} but the training images are ${train.height}x${train.width}`,
    );
  }
}

/** Loads a directory that holds all four IDX files. */
async function loadIdxDir(loc: IdxLocation, name: string, classes: number | undefined, fashion: boolean): Promise<Dataset> {
  const f = loc.files as Record<IdxRole, string>;
  const [train, test] = await Promise.all([
    readIdxPair(f.trainImages, f.trainLabels, classes),
    readIdxPair(f.testImages, f.testLabels, classes),
  ]);
  checkSameShape(train, test, f.testImages);
  const k = classes ?? inferClasses(train, test, loc.dir);
  return {
    name,
    source: loc.dir,
    classes: k,
    classNames: classNamesFor(k, fashion),
    train,
    test,
  };
}

function inferClasses(train: ImageSet, test: ImageSet, where: string): number {
  const k = Math.max(impliedClasses(train.labels), impliedClasses(test.labels));
  if (k < 2) throw new DataError(where, 'every label is 0: a classifier needs at least two classes');
  return k;
}

const CSV_RE = /\.csv(\.gz)?$/i;

/** Loads the train/test CSV pair of a directory, or explains what is missing. */
async function loadCsvDir(dir: string, names: Set<string>, name: string): Promise<Dataset> {
  const csvs = [...names].filter((n) => CSV_RE.test(n)).sort();
  const trains = csvs.filter((n) => /(^|[-_.])train\.csv(\.gz)?$/i.test(n));
  const tests = csvs.filter((n) => /(^|[-_.])(test|t10k)\.csv(\.gz)?$/i.test(n));
  if (trains.length === 0 && tests.length === 0) {
    throw new DataError(
      dir,
      `no dataset files: expected the four IDX files (${ROLES.map((r) => `${IDX_FILE_NAMES[r]}[.gz]`).join(', ')}) or a train CSV and a test CSV (train.csv + test.csv, mnist_train.csv + mnist_test.csv)${csvs.length > 0 ? `; found ${csvs.join(', ')}` : ''}`,
    );
  }
  if (trains.length !== 1 || tests.length !== 1) {
    const what =
      trains.length === 0
        ? `a test CSV (${tests.join(', ')}) but no train CSV`
        : tests.length === 0
          ? `a train CSV (${trains.join(', ')}) but no test CSV (test.csv, mnist_test.csv, ...); to hold out part of one file as the test set, give the file itself`
          : `more than one candidate (train: ${trains.join(', ')}; test: ${tests.join(', ')}); give a directory with exactly one of each`;
    throw new DataError(dir, `has ${what}`);
  }
  const trainFile = join(dir, trains[0]!);
  const testFile = join(dir, tests[0]!);
  const [train, test] = await Promise.all([readCsvFile(trainFile), readCsvFile(testFile)]);
  if (train.features !== test.features) {
    throw new DataError(testFile, `rows have ${test.features} pixels but ${trainFile} has ${train.features}`);
  }
  const classes = inferClasses(train, test, dir);
  return {
    name,
    source: `${trainFile}, ${testFile}`,
    classes,
    classNames: classNamesFor(classes, /fashion/i.test(dir + trains[0])),
    train,
    test,
  };
}

/** A single CSV file: hold out a fixed, stratified 20% as the test set (see the module comment). */
async function loadCsvFile(file: string, name: string, splitSeed: number): Promise<Dataset> {
  const all = await readCsvFile(file);
  if (all.count < 2) throw new DataError(file, `holds ${all.count} row: too few to hold out a test set`);
  const classes = inferClasses(all, all, file);
  const { train, held } = splitIndices(all.count, SINGLE_CSV_TEST_FRACTION, new Rng(splitSeed), all.labels, {
    stratify: true,
  });
  const note =
    `${basename(file)} is a single file: ${held.length} of its ${all.count} rows (a fixed, stratified 20%, seed ${splitSeed}) ` +
    `are held out as the test set and never trained on; give a directory with train.csv and test.csv to choose the test set yourself`;
  return {
    name,
    source: `${file} (test set: fixed stratified 20% held out, seed ${splitSeed})`,
    classes,
    classNames: classNamesFor(classes, /fashion/i.test(file)),
    train: subsetImageSet(all, train),
    test: subsetImageSet(all, held),
    notes: [note],
  };
}

async function looksLikeIdx(file: string): Promise<boolean> {
  try {
    const opened = await openDataFile(file);
    try {
      if (opened.size < 4) return false;
      const head = new Uint8Array(4);
      await readExactly(opened, file, head, 0, 4, 0);
      return head[0] === 0 && head[1] === 0 && head[2] === 0x08 && (head[3] === 1 || head[3] === 3);
    } finally {
      await opened.handle.close().catch(() => undefined);
    }
  } catch {
    return false;
  }
}

/**
 * Resolves `spec` (a dataset name, a directory or a CSV file) to a Dataset.
 * Every failure is a DataError with a one-line, actionable message.
 */
export async function loadDataset(spec: string = DEFAULT_DATASET, options: LoadOptions = {}): Promise<Dataset> {
  const splitSeed = options.testSplitSeed ?? MNIST_SAMPLE_SPLIT_SEED;
  if (spec === 'mnist-sample') return loadMnistSample(splitSeed);
  if (spec === 'mnist' || spec === 'fashion-mnist') {
    const { found, searched } = await locateNamedDataset(spec, options);
    if (found === undefined) {
      const list = searched.map((s) => `${s.dir} (${s.status})`).join('; ');
      throw new DataError(spec, `dataset not found. Searched: ${list}. To get it: ${howToGet(spec, options)}`);
    }
    return loadIdxDir(found, spec, 10, spec === 'fashion-mnist');
  }

  // A quoted '~/...' reaches us unexpanded: expand it like the shell would.
  const path = resolve(spec === '~' || spec.startsWith('~/') ? join(options.homeDir ?? homedir(), spec.slice(1)) : spec);
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new DataError(
        spec,
        `no such dataset: not a dataset name (${DATASET_NAMES.join(', ')}) and no file or directory at ${path}`,
      );
    }
    throw new DataError(spec, `cannot read: ${describeFsError(e)}`);
  }
  if (st.isDirectory()) {
    const names = await listDir(path);
    if (names === undefined) throw new DataError(path, 'cannot list the directory (permission denied?)');
    const loc = await findIdxFiles(path);
    if (loc !== undefined && loc.missing.length < 4) {
      if (loc.missing.length > 0) {
        throw new DataError(path, `incomplete IDX dataset: missing ${loc.missing.join(', ')}`);
      }
      return loadIdxDir(loc, spec, undefined, /fashion/i.test(path));
    }
    return loadCsvDir(path, names, spec);
  }
  if (await looksLikeIdx(path)) {
    throw new DataError(
      path,
      'is a single IDX file: give the directory that holds all four (train-images, train-labels, t10k-images, t10k-labels)',
    );
  }
  return loadCsvFile(path, spec, splitSeed);
}

// ---------------------------------------------------------------------------------------------
// Listing

export interface DatasetListing {
  name: NamedDataset;
  description: string;
  available: boolean;
  /** Where it would be loaded from (when available). */
  location?: string;
  /** Every place looked at, with why it was not used. */
  searched: Searched[];
  /** How to get it, when not available. */
  hint?: string;
}

/** What `densetrain data list` shows: each named dataset, whether it is here and where. */
export async function listDatasets(options: LoadOptions = {}): Promise<DatasetListing[]> {
  const out: DatasetListing[] = [];
  const sampleDir = mnistSampleDir();
  const sampleNames = await listDir(sampleDir);
  const sampleHere = sampleNames !== undefined && sampleNames.has(MNIST_SAMPLE_IMAGES) && sampleNames.has(MNIST_SAMPLE_LABELS);
  out.push({
    name: 'mnist-sample',
    description: '10,000 real MNIST digits shipped with densetrain (8,000 train / 2,000 test)',
    available: sampleHere,
    ...(sampleHere ? { location: sampleDir } : {}),
    searched: sampleHere ? [] : [{ dir: sampleDir, status: sampleNames === undefined ? 'missing' : 'incomplete' }],
    ...(sampleHere ? {} : { hint: 'reinstall densetrain (the sample ships in its data/mnist-sample folder)' }),
  });
  for (const name of ['mnist', 'fashion-mnist'] as const) {
    const { found, searched } = await locateNamedDataset(name, options);
    out.push({
      name,
      description:
        name === 'mnist'
          ? 'MNIST handwritten digits, 60,000 train / 10,000 test (IDX files)'
          : 'Fashion-MNIST clothing images, 60,000 train / 10,000 test (IDX files)',
      available: found !== undefined,
      ...(found !== undefined ? { location: found.dir } : { hint: howToGet(name, options) }),
      searched,
    });
  }
  return out;
}

