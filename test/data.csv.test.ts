import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataError } from '../src/data/errors.js';
import { parseCsv, readCsvFile } from '../src/data/csv.js';
import { csvText, gz, syntheticSet, tempDir, writeText } from './helpers/data-fixtures.js';

let dir: string;
let cleanup: () => void;
beforeAll(() => {
  ({ dir, cleanup } = tempDir());
});
afterAll(() => cleanup());

const set = syntheticSet(9, 4, 4, 10, 3); // 16 pixels: a perfect square

function parse(text: string, classes?: number) {
  return parseCsv(Buffer.from(text), 'x.csv', classes === undefined ? {} : { classes });
}

function csvError(text: string, classes?: number): DataError {
  try {
    parse(text, classes);
  } catch (e) {
    expect(e).toBeInstanceOf(DataError);
    expect((e as DataError).message).not.toContain('\n');
    return e as DataError;
  }
  throw new Error('expected a DataError, but parsing succeeded');
}

describe('CSV reader: valid files', () => {
  it('reads label + pixels per row; a perfect-square pixel count becomes sqrt x sqrt', async () => {
    const f = writeText(dir, 'plain.csv', csvText(set));
    const s = await readCsvFile(f);
    expect(s).toMatchObject({ count: 9, height: 4, width: 4, features: 16 });
    expect(Array.from(s.images)).toEqual(Array.from(set.images));
    expect(Array.from(s.labels)).toEqual(Array.from(set.labels));
  });

  it('header, CRLF, spaces and tabs, BOM, blank trailing lines: same data', async () => {
    const variants = [
      csvText(set, { header: true }),
      csvText(set, { crlf: true }),
      csvText(set, { spaces: true, crlf: true, header: true }),
      csvText(set, { trailingBlank: 3 }),
      csvText(set, { bom: true, header: true, crlf: true, trailingBlank: 2 }),
      csvText(set).trimEnd(), // no final newline
    ];
    for (const text of variants) {
      const s = parse(text);
      expect(s.count).toBe(9);
      expect(Array.from(s.images)).toEqual(Array.from(set.images));
      expect(Array.from(s.labels)).toEqual(Array.from(set.labels));
    }
  });

  it('a non-square pixel count is 1 x features', () => {
    const s = parse('1,2,3,4\n0,5,6,7\n');
    expect(s).toMatchObject({ count: 2, height: 1, width: 3, features: 3 });
    expect(Array.from(s.images)).toEqual([2, 3, 4, 5, 6, 7]);
  });

  it('integer values written as 12.0 or quoted "12" are accepted', () => {
    const s = parse('"1",12.0, 0 ,255\n');
    expect(Array.from(s.images)).toEqual([12, 0, 255]);
    expect(Array.from(s.labels)).toEqual([1]);
  });

  it('reads gzip-compressed CSV (by magic bytes)', async () => {
    const f = writeText(dir, 'packed.csv.gz', gz(Buffer.from(csvText(set, { header: true }))));
    const s = await readCsvFile(f);
    expect(Array.from(s.images)).toEqual(Array.from(set.images));
  });
});

describe('CSV reader: errors name file, line and column', () => {
  it('non-numeric field', () => {
    expect(csvError('1,2,3\n4,abc,6\n').message).toBe("x.csv: line 2, column 2: non-numeric field 'abc' (expected a pixel value 0-255)");
  });

  it('non-numeric field in the first row after a numeric label is data, not a header', () => {
    expect(csvError('1,2,x\n4,5,6\n').message).toMatch(/^x\.csv: line 1, column 3: non-numeric field 'x'/);
  });

  it('empty field', () => {
    expect(csvError('1,2,3\n4,,6\n').message).toMatch(/line 2, column 2: empty field/);
  });

  it('ragged rows: too few and too many fields', () => {
    expect(csvError('1,2,3\n4,5\n').message).toBe('x.csv: line 2, column 3: row ends after 2 fields, expected 3 (as on line 1)');
    expect(csvError('label,a,b\n1,2,3\n\n4,5,6,7\n').message).toBe(
      'x.csv: line 4, column 4: row has 4 fields, expected 3 (as on line 1)',
    );
  });

  it('the first error in file order wins', () => {
    expect(csvError('1,2,3\n4,z,6\n1,2\n').message).toMatch(/line 2, column 2: non-numeric/);
  });

  it('pixels outside 0-255 or not integers', () => {
    expect(csvError('1,2,256\n').message).toBe('x.csv: line 1, column 3: pixel 256 is out of range 0-255');
    expect(csvError('1,2,-1\n').message).toBe('x.csv: line 1, column 3: pixel -1 is out of range 0-255');
    expect(csvError('1,2.5,3\n').message).toBe('x.csv: line 1, column 2: pixel 2.5 is not an integer (pixels must be integers 0-255)');
    expect(csvError('1,2,99999999999999999999\n').message).toMatch(/column 3: pixel 99999999999999999999 is out of range/);
  });

  it('labels that are not integers or out of range', () => {
    expect(csvError('1.5,2,3\n').message).toBe('x.csv: line 1, column 1: label 1.5 is not an integer');
    expect(csvError('0,1,1\n12,2,3\n', 10).message).toBe('x.csv: line 2, column 1: label 12 is out of range 0-9 (10 classes)');
    expect(csvError('300,2,3\n').message).toMatch(/label 300 is out of range 0-255/);
    expect(csvError('-1,2,3\n').message).toMatch(/label -1 is out of range/);
  });

  it('no rows', async () => {
    expect(csvError('').message).toMatch(/no data rows/);
    expect(csvError('\n \r\n\n').message).toMatch(/no data rows \(the file is blank\)/);
    expect(csvError('label,p1,p2\n\n').message).toBe('x.csv: no data rows (only the header on line 1)');
    const f = writeText(dir, 'empty.csv', '');
    await expect(readCsvFile(f)).rejects.toThrow(/empty\.csv: empty file \(0 bytes\): no data rows/);
  });

  it('a row with only a label', () => {
    expect(csvError('5\n6\n').message).toMatch(/line 1, column 2: row has 1 field/);
  });

  it('a corrupt gzip CSV is a DataError', async () => {
    const full = gz(Buffer.from(csvText(syntheticSet(50, 4, 4))));
    const f = writeText(dir, 'cut.csv.gz', full.subarray(0, full.length >> 1));
    await expect(readCsvFile(f)).rejects.toThrow(/cut\.csv\.gz: gzip data cut short/);
  });

  it('size caps: a gzip bomb stops at the cap, a raw file over the cap is refused', async () => {
    const bomb = writeText(dir, 'bomb.csv.gz', gz(Buffer.alloc(4 * 1024 * 1024, '0,')));
    await expect(readCsvFile(bomb, { maxBytes: 100_000 })).rejects.toThrow(
      /bomb\.csv\.gz: decompresses to more than 100000 bytes, the limit; refusing to go on/,
    );
    const big = writeText(dir, 'big.csv', csvText(syntheticSet(100, 4, 4)));
    await expect(readCsvFile(big, { maxBytes: 1000 })).rejects.toThrow(/big\.csv: too large: \d+ bytes, the limit is 1000/);
  });

  it('missing file', async () => {
    await expect(readCsvFile(`${dir}/nope.csv`)).rejects.toThrow(/nope\.csv: cannot open: no such file/);
  });
});
