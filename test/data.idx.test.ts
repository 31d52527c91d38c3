import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../src/data/errors.js';
import { readIdxImages, readIdxLabels, readIdxPair, encodeIdxImages, encodeIdxLabels } from '../src/data/idx.js';
import { Rng } from '../src/rng.js';
import { gz, idxImages, idxLabels, syntheticSet, tempDir, writeText } from './helpers/data-fixtures.js';

let dir: string;
let cleanup: () => void;
beforeAll(() => {
  ({ dir, cleanup } = tempDir());
});
afterAll(() => cleanup());

const set = syntheticSet(12, 5, 3, 10, 7);

/** Awaits p and returns the DataError it must reject with (fails the test otherwise). */
async function dataError(p: Promise<unknown>): Promise<DataError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(DataError);
    const err = e as DataError;
    expect(err.message).not.toContain('\n');
    return err;
  }
  throw new Error('expected a DataError, but the call succeeded');
}

describe('IDX reader: valid files', () => {
  it('reads raw image and label files', async () => {
    const fi = writeText(dir, 'raw-images', idxImages(set));
    const fl = writeText(dir, 'raw-labels', idxLabels(set.labels));
    const img = await readIdxImages(fi);
    expect([img.count, img.height, img.width]).toEqual([12, 5, 3]);
    expect(Array.from(img.images)).toEqual(Array.from(set.images));
    expect(Array.from(await readIdxLabels(fl))).toEqual(Array.from(set.labels));
  });

  it('reads gzip files and detects gzip by magic bytes, not by name', async () => {
    const a = writeText(dir, 'gz-images.gz', gz(idxImages(set)));
    const b = writeText(dir, 'gz-images-no-suffix', gz(idxImages(set))); // gzip without .gz
    const c = writeText(dir, 'raw-named.gz', idxImages(set)); // raw despite .gz
    for (const f of [a, b, c]) {
      const img = await readIdxImages(f);
      expect(Array.from(img.images)).toEqual(Array.from(set.images));
    }
  });

  it('reads a pair into an ImageSet and checks labels against classes', async () => {
    const fi = writeText(dir, 'pair-images.gz', gz(idxImages(set)));
    const fl = writeText(dir, 'pair-labels.gz', gz(idxLabels(set.labels)));
    const s = await readIdxPair(fi, fl, 10);
    expect(s).toMatchObject({ count: 12, height: 5, width: 3, features: 15 });
    expect(Array.from(s.labels)).toEqual(Array.from(set.labels));
  });

  it('encodeIdx* round-trips through the reader', async () => {
    const fi = writeText(dir, 'enc-images', encodeIdxImages(set.count, set.height, set.width, set.images));
    const fl = writeText(dir, 'enc-labels', encodeIdxLabels(set.labels));
    const s = await readIdxPair(fi, fl);
    expect(Array.from(s.images)).toEqual(Array.from(set.images));
    expect(Array.from(s.labels)).toEqual(Array.from(set.labels));
  });
});

describe('IDX reader: hostile files are one-line DataErrors naming the file', () => {
  it('empty file', async () => {
    const f = writeText(dir, 'empty.gz', new Uint8Array(0));
    const e = await dataError(readIdxImages(f));
    expect(e.message).toBe(`${f}: empty file (0 bytes)`);
  });

  it('missing file and a directory', async () => {
    const missing = join(dir, 'nope-idx3-ubyte');
    expect((await dataError(readIdxImages(missing))).message).toMatch(/nope-idx3-ubyte: cannot open: no such file/);
    const d = join(dir, 'a-directory');
    mkdirSync(d, { recursive: true });
    expect((await dataError(readIdxImages(d))).message).toMatch(/is a directory|cannot open/);
  });

  it('named .gz but not gzip (an HTML error page)', async () => {
    const f = writeText(dir, 'html.gz', '<!DOCTYPE html><html><body>Not Found</body></html>');
    const e = await dataError(readIdxImages(f));
    expect(e.message).toContain(f);
    expect(e.message).toMatch(/not gzip-compressed/);
    expect(e.message).toMatch(/HTML/);
  });

  it('gzip cut short', async () => {
    const full = gz(idxImages(syntheticSet(200, 28, 28)));
    for (const keep of [10, Math.floor(full.length / 2), full.length - 3]) {
      const f = writeText(dir, `cut-${keep}.gz`, full.subarray(0, keep));
      const e = await dataError(readIdxImages(f));
      expect(e.message).toMatch(/cut short|truncated/);
    }
  });

  it('corrupt gzip data', async () => {
    const full = Buffer.from(gz(idxImages(syntheticSet(50, 28, 28))));
    for (let i = 20; i < full.length - 8; i += 97) full[i] = full[i]! ^ 0x5a;
    const f = writeText(dir, 'corrupt.gz', full);
    const e = await dataError(readIdxImages(f));
    expect(e.message).toMatch(/corrupt gzip data|cut short|decompresses|truncated|not an IDX/);
  });

  it('wrong magic: a label file given as images, and images as labels', async () => {
    const fl = writeText(dir, 'labels-as-images', idxLabels(set.labels));
    expect((await dataError(readIdxImages(fl))).message).toMatch(/1 dimension \(a label file\?\), expected 3/);
    const fi = writeText(dir, 'images-as-labels.gz', gz(idxImages(set)));
    expect((await dataError(readIdxLabels(fi))).message).toMatch(/3 dimensions \(an image file\?\), expected 1/);
  });

  it('not IDX at all, and an unsupported element type', async () => {
    const f = writeText(dir, 'random', Buffer.from([0x12, 0x34, 0x56, 0x78, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]));
    expect((await dataError(readIdxImages(f))).message).toMatch(/not an IDX file: expected magic 00 00 08 03, found 12 34 56 78/);
    const fl = writeText(dir, 'float-images', idxImages(set, { magic: 0x00000d03 }));
    expect((await dataError(readIdxImages(fl))).message).toMatch(/0x0d \(float32\) is not supported/);
  });

  it('a short header', async () => {
    const f = writeText(dir, 'short-header', idxImages(set).subarray(0, 10));
    expect((await dataError(readIdxImages(f))).message).toMatch(/truncated header: 10 bytes, an IDX images header is 16/);
  });

  it('header count larger than the file: truncated, with the numbers', async () => {
    const small = syntheticSet(2, 28, 28);
    const f = writeText(dir, 'train-images-idx3-ubyte', idxImages(small, { count: 60000 }));
    const e = await dataError(readIdxImages(f));
    expect(e.message).toBe(
      `${f}: truncated: header declares 60000 images of 28x28 (47040016 bytes) but the file holds ${16 + 2 * 784}`,
    );
    const g = writeText(dir, 'train-images-idx3-ubyte.gz', gz(idxImages(small, { count: 60000 })));
    expect((await dataError(readIdxImages(g))).message).toMatch(
      /truncated or corrupt: header declares 60000 images of 28x28 \(47040016 bytes\) but \d+ compressed bytes cannot hold that much/,
    );
    const h = writeText(dir, 'hundred-images.gz', gz(idxImages(small, { count: 100 })));
    expect((await dataError(readIdxImages(h))).message).toBe(
      `${h}: truncated: header declares 100 images of 28x28 (78416 bytes) but the file decompresses to 1584`,
    );
  });

  it('a header claiming 10^9 images is an error, not an allocation', async () => {
    const f = writeText(dir, 'billion', idxImages(set, { count: 1e9, height: 28, width: 28 }));
    expect((await dataError(readIdxImages(f))).message).toMatch(/header declares 1000000000 images of 28x28 .* limit/);
    const g = writeText(dir, 'billion.gz', gz(idxImages(set, { count: 1e9, height: 28, width: 28 })));
    expect((await dataError(readIdxImages(g))).message).toMatch(/1000000000 images/);
    const l = writeText(dir, 'billion-labels', idxLabels(set.labels, { count: 4e9 }));
    expect((await dataError(readIdxLabels(l))).message).toMatch(/4000000000 labels/);
  });

  it('gzip whose header declares far more than its compressed size can hold (no big allocation)', async () => {
    // 1,000,000 28x28 images = 784 MB, under the 1 GiB cap, but 200 compressed bytes cannot hold them.
    const g = writeText(dir, 'claims-784mb.gz', gz(idxImages(set, { count: 1_000_000, height: 28, width: 28 })));
    expect((await dataError(readIdxImages(g))).message).toMatch(/compressed bytes cannot hold that much/);
  });

  it('gzip bomb: decompression stops at the declared size', async () => {
    const header = idxImages({ count: 10, height: 28, width: 28, images: new Uint8Array(0) }, {}).subarray(0, 16);
    const bomb = Buffer.concat([header, Buffer.alloc(16 * 1024 * 1024)]); // 16 MB of zeros, ~16 KB compressed
    const g = writeText(dir, 'bomb.gz', gz(bomb));
    const before = Date.now();
    const e = await dataError(readIdxImages(g));
    expect(e.message).toMatch(/decompresses to more than that/);
    expect(Date.now() - before).toBeLessThan(20_000); // generous: it stops after the first chunks
  });

  it('raw file with trailing bytes', async () => {
    const f = writeText(dir, 'trailing', Buffer.concat([idxImages(set), Buffer.from([1, 2, 3])]));
    expect((await dataError(readIdxImages(f))).message).toMatch(/3 unexpected trailing bytes/);
  });

  it('zero count and empty images', async () => {
    const z = writeText(dir, 'zero', idxImages({ ...set, images: new Uint8Array(0) }, { count: 0 }));
    expect((await dataError(readIdxImages(z))).message).toMatch(/no images \(count 0\)/);
    const e = writeText(dir, 'zero-dims', idxImages({ ...set, images: new Uint8Array(0) }, { height: 0 }));
    expect((await dataError(readIdxImages(e))).message).toMatch(/empty images \(0x3\)/);
  });

  it('image and label counts must agree', async () => {
    const fi = writeText(dir, 'cnt-images', idxImages(set));
    const fl = writeText(dir, 'cnt-labels', idxLabels(set.labels.subarray(0, 9)));
    const e = await dataError(readIdxPair(fi, fl));
    expect(e.message).toBe(`${fl}: holds 9 labels but ${fi} holds 12 images: the counts must be equal`);
  });

  it('labels out of range for the class count', async () => {
    const labels = Uint8Array.from(set.labels);
    labels[3] = 12;
    const fi = writeText(dir, 'oor-images', idxImages(set));
    const fl = writeText(dir, 'oor-labels', idxLabels(labels));
    const e = await dataError(readIdxPair(fi, fl, 10));
    expect(e.message).toBe(`${fl}: label 12 at index 3 is out of range: 10 classes, labels must be 0-9`);
  });

  it('fuzz: random mutations of valid files never throw anything but DataError', async () => {
    const rng = new Rng(99);
    const base = [idxImages(syntheticSet(6, 4, 4)), gz(idxImages(syntheticSet(6, 4, 4)))];
    const fuzzDir = join(dir, 'fuzz');
    mkdirSync(fuzzDir, { recursive: true });
    let ok = 0;
    let failed = 0;
    for (let k = 0; k < 150; k++) {
      const src = Buffer.from(base[k % 2]!);
      const mutated =
        k % 3 === 0
          ? src.subarray(0, rng.int(src.length + 1))
          : (() => {
              for (let m = 0; m < 1 + rng.int(4); m++) src[rng.int(src.length)] = rng.int(256);
              return src;
            })();
      const f = join(fuzzDir, `m${k}`);
      writeFileSync(f, mutated);
      try {
        await readIdxImages(f);
        ok++;
      } catch (e) {
        expect(e, String(e)).toBeInstanceOf(DataError);
        failed++;
      }
    }
    expect(failed).toBeGreaterThan(0);
    expect(ok + failed).toBe(150);
  });
});
