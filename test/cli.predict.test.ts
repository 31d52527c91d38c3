/**
 * `densetrain predict`: PNG files of every colour type and bit depth (written by fast-png, an
 * encoder independent of the pngjs decoder under test) give exactly the model's probabilities
 * for the same MNIST test image; larger and non-square images are resized; dark-on-light images
 * get a hint and --invert fixes them; IDX and CSV files; --json; and bad files (not an image,
 * truncated, 0x0, 50,000x50,000 claimed, empty, missing) get one line and exit 2.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode } from 'fast-png';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { predictImageSet } from '../src/train/predict.js';
import { encodeIdxImages } from '../src/data/idx.js';
import { loadDataset } from '../src/data/registry.js';
import type { Dataset } from '../src/data/types.js';
import { createReferenceKernels } from '../src/kernels/reference.js';
import { loadModel } from '../src/model/load.js';
import { formatProbability } from '../src/format.js';
import { ensureBuilt, runCli } from './helpers/cli.js';

let dir: string;
let run: string;
let dataset: Dataset;
/** The model's own probabilities for the first test images (the reference every PNG must reproduce). */
let expected: Float32Array;
const IMAGES = 6;

function digit(i: number): Uint8Array {
  return dataset.test.images.subarray(i * 784, (i + 1) * 784);
}

async function png(name: string, image: Parameters<typeof encode>[0]): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, encode(image));
  return path;
}

interface JsonPrediction {
  file: string;
  index?: number;
  label?: number;
  top: { class: number; name: string; probability: number; rest: number }[];
  looksInverted?: boolean;
}

async function predictJson(args: string[]): Promise<{ code: number | null; predictions: JsonPrediction[]; stderr: string }> {
  const result = await runCli(['predict', '--model', run, '--json', ...args]);
  return { code: result.code, predictions: result.stdout.trim() ? (JSON.parse(result.stdout) as JsonPrediction[]) : [], stderr: result.stderr };
}

function expectTop(p: JsonPrediction, image: number, tolerance = 0): void {
  const row = Array.from(expected.subarray(image * 10, image * 10 + 10));
  const best = row.indexOf(Math.max(...row));
  expect(p.top).toHaveLength(3);
  expect(p.top[0]!.class, p.file).toBe(best);
  if (tolerance === 0) for (const t of p.top) expect(t.probability, `${p.file} class ${t.class}`).toBeCloseTo(row[t.class]!, 6);
}

beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), 'densetrain-predict-'));
  run = join(dir, 'run');
  const trained = await runCli(['train', '--layers', '784,64,10', '--epochs', '2', '--out', run, '--quiet']);
  expect(trained.code, trained.stderr).toBe(0);
  dataset = await loadDataset('mnist-sample', { seed: 1 });
  const model = await loadModel(run, { kernels: createReferenceKernels() });
  try {
    const first = { ...dataset.test, count: IMAGES, images: dataset.test.images.subarray(0, IMAGES * 784), labels: dataset.test.labels.subarray(0, IMAGES) };
    expected = predictImageSet(model, first, model.scaling);
  } finally {
    model.dispose();
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('densetrain predict', () => {
  it('PNG in every colour type and bit depth: exactly the probabilities of the same image in the dataset', async () => {
    const files: [string, number][] = [];
    for (let i = 0; i < IMAGES; i++) {
      const d = digit(i);
      const rgb = new Uint8Array(784 * 3);
      const rgba = new Uint8Array(784 * 4);
      const greyAlpha = new Uint8Array(784 * 2);
      const grey16 = new Uint16Array(784);
      for (let p = 0; p < 784; p++) {
        rgb.set([d[p]!, d[p]!, d[p]!], 3 * p);
        rgba.set([d[p]!, d[p]!, d[p]!, 255], 4 * p);
        greyAlpha.set([d[p]!, 255], 2 * p);
        grey16[p] = d[p]! * 257;
      }
      // Palette: one entry per grey level the image uses.
      const levels = [...new Set(d)];
      const indexOf = new Map(levels.map((v, k) => [v, k]));
      const indices = Uint8Array.from(d, (v) => indexOf.get(v)!);
      const kinds: [string, Parameters<typeof encode>[0]][] = [
        ['grey8', { width: 28, height: 28, data: d, depth: 8, channels: 1 }],
        ['grey16', { width: 28, height: 28, data: grey16, depth: 16, channels: 1 }],
        ['greyalpha', { width: 28, height: 28, data: greyAlpha, depth: 8, channels: 2 }],
        ['rgb', { width: 28, height: 28, data: rgb, depth: 8, channels: 3 }],
        ['rgba', { width: 28, height: 28, data: rgba, depth: 8, channels: 4 }],
        ['palette', { width: 28, height: 28, data: indices, depth: 8, channels: 1, palette: levels.map((v) => [v, v, v]) }],
      ];
      for (const [kind, image] of kinds) files.push([await png(`${i}-${kind}.png`, image), i]);
    }
    const { code, predictions, stderr } = await predictJson(files.map(([f]) => f));
    expect(code, stderr).toBe(0);
    expect(predictions.map((p) => p.file)).toEqual(files.map(([f]) => f));
    predictions.forEach((p, k) => expectTop(p, files[k]![1]));
    expect(predictions.every((p) => p.looksInverted === false)).toBe(true);
    expect(stderr).toBe('');
  });

  it('a larger or non-square PNG is resampled to 28x28 (padded to square with its background, centred) and keeps the prediction', async () => {
    const files: [string, number][] = [];
    for (let i = 0; i < IMAGES; i++) {
      const d = digit(i);
      // 4x larger (each pixel a 4x4 block).
      const big = new Uint8Array(112 * 112);
      for (let y = 0; y < 112; y++) for (let x = 0; x < 112; x++) big[y * 112 + x] = d[(y >> 2) * 28 + (x >> 2)]!;
      files.push([await png(`${i}-big.png`, { width: 112, height: 112, data: big, depth: 8, channels: 1 }), i]);
      // The same with the empty columns on both sides cut off: a narrow image that padding must
      // centre back into the square it came from.
      const empty = (x: number) => Array.from({ length: 28 }, (_, y) => d[y * 28 + x]!).every((v) => v === 0);
      let cut = 0;
      while (cut < 13 && empty(cut) && empty(27 - cut)) cut++;
      expect(cut, `image ${i} has empty side columns`).toBeGreaterThan(0);
      const width = 112 - 8 * cut;
      const narrow = new Uint8Array(width * 112);
      for (let y = 0; y < 112; y++) narrow.set(big.subarray(y * 112 + 4 * cut, y * 112 + 4 * cut + width), y * width);
      files.push([await png(`${i}-narrow.png`, { width, height: 112, data: narrow, depth: 8, channels: 1 }), i]);
    }
    const { code, predictions, stderr } = await predictJson(files.map(([f]) => f));
    expect(code, stderr).toBe(0);
    predictions.forEach((p, k) => expectTop(p, files[k]![1], 1));
    // The narrow image, centred back, is the big one: the same probabilities (pica resamples in tiles, so not to the last bit).
    for (let k = 0; k < predictions.length; k += 2) {
      predictions[k]!.top.forEach((t, j) => expect(predictions[k + 1]!.top[j]!.probability).toBeCloseTo(t.probability, 4));
    }
  });

  it('a dark digit on a light background: a one-line hint; --invert gives the original probabilities', async () => {
    const d = digit(0);
    const file = await png('inverted.png', { width: 28, height: 28, data: Uint8Array.from(d, (v) => 255 - v), depth: 8, channels: 1 });
    const plain = await runCli(['predict', '--model', run, file]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stderr.trim().split('\n')).toEqual(['densetrain: hint: inverted.png looks like a dark digit on a light background; MNIST digits are light on dark: try --invert']);
    // A probability: "97.31%", or near 1 "1 − 2.1e-10", or near 0 "3.2e-7".
    const P = '(?:[\\d.]+%|1 − [\\d.]+e-\\d+|1 − <1e-45|[\\d.]+e-\\d+)';
    expect(plain.stdout).toMatch(new RegExp(`^.*inverted\\.png: \\d \\(${P}\\), \\d \\(${P}\\), \\d \\(${P}\\)\\n$`));
    // The line prints what --json holds, formatted so that probabilities near 1 stay apart.
    const same = await predictJson([file]);
    const shown = same.predictions[0]!.top.map((t) => `${t.name} (${formatProbability(t.probability, t.rest)})`).join(', ');
    expect(plain.stdout).toBe(`${file}: ${shown}\n`);
    for (const t of same.predictions[0]!.top) expect(t.rest).toBeCloseTo(1 - t.probability, 6);
    const fixed = await predictJson(['--invert', file]);
    expect(fixed.code).toBe(0);
    expect(fixed.stderr).toBe('');
    expectTop(fixed.predictions[0]!, 0);
    expect(fixed.predictions[0]!.looksInverted).toBe(false);
  });

  it('IDX (raw and gzip) and CSV files: every image, with its index (and label for CSV)', async () => {
    const idx = join(dir, 'few-images-idx3-ubyte');
    await writeFile(idx, encodeIdxImages(IMAGES, 28, 28, dataset.test.images.subarray(0, IMAGES * 784)));
    const { gzipSync } = await import('node:zlib');
    const idxGz = join(dir, 'few-images-idx3-ubyte.gz');
    await writeFile(idxGz, gzipSync(await readFile(idx)));
    const csv = join(dir, 'few.csv');
    const rows = Array.from({ length: IMAGES }, (_, i) => `${dataset.test.labels[i]},${Array.from(digit(i)).join(',')}`);
    await writeFile(csv, `label,${Array.from({ length: 784 }, (_, p) => `p${p}`).join(',')}\n${rows.join('\n')}\n`);
    const { code, predictions, stderr } = await predictJson([idx, idxGz, csv]);
    expect(code, stderr).toBe(0);
    expect(predictions).toHaveLength(3 * IMAGES);
    predictions.forEach((p, k) => {
      expect(p.index).toBe(k % IMAGES);
      expectTop(p, k % IMAGES);
    });
    expect(predictions.slice(2 * IMAGES).map((p) => p.label)).toEqual(Array.from(dataset.test.labels.subarray(0, IMAGES)));
    // Images of the wrong size for the model.
    const small = join(dir, 'small-idx3-ubyte');
    await writeFile(small, encodeIdxImages(2, 8, 8, new Uint8Array(128)));
    const wrong = await runCli(['predict', '--model', run, small]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr.trim()).toMatch(/small-idx3-ubyte: holds images of 64 pixels \(8x8\) but the model takes 784 inputs$/);
  });

  it('bad files: one line each, exit 2, the good files still predicted', async () => {
    const good = await png('good.png', { width: 28, height: 28, data: digit(1), depth: 8, channels: 1 });
    const whole = await readFile(good);
    const text = join(dir, 'notes.txt');
    await writeFile(text, 'hello, this is not an image\n');
    const truncated = join(dir, 'truncated.png');
    await writeFile(truncated, whole.subarray(0, whole.length - 30));
    const claim = async (name: string, width: number, height: number): Promise<string> => {
      const bytes = Buffer.from(whole);
      bytes.writeUInt32BE(width, 16);
      bytes.writeUInt32BE(height, 20);
      const path = join(dir, name);
      await writeFile(path, bytes);
      return path;
    };
    const zero = await claim('zero.png', 0, 0);
    const huge = await claim('huge.png', 50_000, 50_000);
    const lies = await claim('lies.png', 28, 2800);
    // A 10x10 grey PNG whose image data inflates to 50 MB: refused as damaged, not decoded.
    const { crc32, deflateSync } = await import('node:zlib');
    const chunk = (type: string, data: Buffer): Buffer => {
      const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
      const out = Buffer.alloc(12 + data.length);
      out.writeUInt32BE(data.length, 0);
      body.copy(out, 4);
      out.writeUInt32BE(crc32(body) >>> 0, 8 + data.length);
      return out;
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(10, 0);
    ihdr.writeUInt32BE(10, 4);
    ihdr[8] = 8; // bit depth
    ihdr[9] = 0; // grey
    const bomb = join(dir, 'bomb.png');
    await writeFile(bomb, Buffer.concat([whole.subarray(0, 8), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(50 * 1024 * 1024))), chunk('IEND', Buffer.alloc(0))]));
    const empty = join(dir, 'empty.png');
    await writeFile(empty, '');
    const missing = join(dir, 'missing.png');
    const expectations: [string, RegExp][] = [
      [text, /notes\.txt: not an image densetrain reads \(PNG, IDX or CSV\): it starts with 68 65 6c 6c/],
      [truncated, /truncated\.png: truncated or damaged PNG \(28x28 8-bit grey claimed; the decoder says: /],
      [zero, /zero\.png: the PNG claims a 0x0 image: nothing to predict$/],
      [huge, /huge\.png: the PNG claims 50000x50000 pixels, more than the 40 megapixels densetrain decodes; scale it down first$/],
      [lies, /lies\.png: truncated or damaged PNG \(28x2800 8-bit grey claimed/],
      [bomb, /bomb\.png: truncated or damaged PNG \(10x10 8-bit grey claimed; the decoder says: /],
      [empty, /empty\.png: empty file \(0 bytes\): not an image$/],
      [missing, /missing\.png: cannot open: no such file or directory$/],
      [dir, /is a directory, expected a file$/],
    ];
    for (const [file, message] of expectations) {
      const result = await runCli(['predict', '--model', run, file]);
      expect(result.code, file).toBe(2);
      const lines = result.stderr.trim().split('\n');
      expect(lines, file).toHaveLength(1);
      expect(lines[0], file).toMatch(message);
      expect(result.stdout).toBe('');
    }
    const mixed = await runCli(['predict', '--model', run, text, good]);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr.trim().split('\n')).toHaveLength(1);
    expect(mixed.stdout).toMatch(/good\.png: /);
  });
});
