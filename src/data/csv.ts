/**
 * CSV reader for the common MNIST-as-CSV layout: one image per row, the label first, then
 * the pixels (integers 0-255), comma-separated:
 *
 *   label,pixel1,pixel2,...        <- optional header (detected: its first field is not a number)
 *   5,0,0,0,...,0
 *
 * Whitespace around fields, CRLF line ends, a UTF-8 BOM and blank lines (trailing or not) are
 * accepted. Everything else wrong is a DataError naming the file, line and column (column 1
 * is the label, column 2 the first pixel): a non-numeric or empty field, a ragged row, a pixel
 * outside 0-255 or not an integer, a label that is not an integer or is out of range, no rows.
 * The file may be gzip-compressed (detected by its magic bytes).
 *
 * Shape: when the pixel count is a perfect square the images are sqrt x sqrt, else 1 x features.
 *
 * The parser works on bytes in two passes (count rows and check field counts, then convert)
 * and allocates the image buffer once; a 110 MB mnist_train.csv parses in about a second.
 */
import type { ImageSet } from './types.js';
import { DataError } from './errors.js';
import { MAX_DATA_BYTES, gunzipCapped, isGzip, maxGunzipSize, openDataFile, readWholeFile } from './files.js';

export interface CsvOptions {
  /** When given, every label must be below it. */
  classes?: number;
  /** Largest (decompressed) file accepted, default 1 GiB. */
  maxBytes?: number;
}

const NL = 10;
const CR = 13;
const SP = 32;
const TAB = 9;
const COMMA = 44;

/** Reads a CSV file (raw or gzip) into an ImageSet. */
export async function readCsvFile(file: string, options: CsvOptions = {}): Promise<ImageSet> {
  const maxBytes = options.maxBytes ?? MAX_DATA_BYTES;
  const opened = await openDataFile(file);
  let bytes: Uint8Array;
  try {
    if (opened.size === 0) throw new DataError(file, 'empty file (0 bytes): no data rows');
    bytes = await readWholeFile(opened, file, maxBytes);
  } finally {
    await opened.handle.close().catch(() => undefined);
  }
  if (isGzip(bytes)) {
    bytes = await gunzipCapped(bytes, file, Math.min(maxBytes, maxGunzipSize(bytes.length)));
  }
  return parseCsv(bytes, file, options);
}

/** Text of a field for messages: trimmed, at most 24 characters, quoted. */
function showField(text: string): string {
  const t = text.trim();
  return t.length > 24 ? `'${t.slice(0, 24)}...'` : `'${t}'`;
}

const NUMBER_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * The slow path for a field the fast path could not take: returns its integer value in
 * [0, 255] or throws the precise DataError.
 */
function slowField(text: string, isLabel: boolean, file: string, line: number, column: number, classes: number | undefined): number {
  let t = text.trim();
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) t = t.slice(1, -1).trim();
  const where = { line, column };
  if (t.length === 0) throw new DataError(file, `empty field (expected ${isLabel ? 'a label' : 'a pixel value 0-255'})`, where);
  if (!NUMBER_RE.test(t)) {
    throw new DataError(file, `non-numeric field ${showField(text)} (expected ${isLabel ? 'a label' : 'a pixel value 0-255'})`, where);
  }
  const v = Number(t);
  if (isLabel) {
    if (!Number.isInteger(v)) throw new DataError(file, `label ${t} is not an integer`, where);
    if (v < 0 || v > 255 || (classes !== undefined && v >= classes)) {
      const range = classes !== undefined ? `0-${classes - 1} (${classes} classes)` : '0-255';
      throw new DataError(file, `label ${t} is out of range ${range}`, where);
    }
    return v;
  }
  if (!Number.isInteger(v)) throw new DataError(file, `pixel ${t} is not an integer (pixels must be integers 0-255)`, where);
  if (v < 0 || v > 255) throw new DataError(file, `pixel ${t} is out of range 0-255`, where);
  return v;
}

function decode(bytes: Uint8Array, start: number, end: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('utf8');
}

/** End of the line starting at `i` (index of '\n' or bytes.length). */
function lineEnd(bytes: Uint8Array, i: number): number {
  const j = bytes.indexOf(NL, i);
  return j < 0 ? bytes.length : j;
}

function isBlank(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const b = bytes[i]!;
    if (b !== SP && b !== TAB && b !== CR) return false;
  }
  return true;
}

function countCommas(bytes: Uint8Array, start: number, end: number): number {
  let n = 0;
  for (let i = start; i < end; i++) if (bytes[i] === COMMA) n++;
  return n;
}

/** Length of the UTF-8 byte-order mark at the start of `bytes` (3), or 0 when there is none. */
function bomLength(bytes: Uint8Array): number {
  return bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
}

/** What pass 1 learned about the file's rows. */
interface CsvLayout {
  /** Fields per row (label + pixels); 0 when the file is blank. */
  fields: number;
  /** The line whose field count set `fields` (named in the ragged-row message). */
  refLine: number;
  /** The header's line number, or 0 when there is no header. */
  headerLine: number;
  /** Data rows before `stopAt`. */
  rows: number;
  /** Byte offset of the first data row (-1 when there is none). */
  dataStart: number;
  /** Byte offset where pass 2 stops: the first ragged row, else the file's end. */
  stopAt: number;
  ragged: { line: number; got: number } | undefined;
}

/** True when a first row's first field is not a number, making the row a header. */
function isHeaderRow(bytes: Uint8Array, start: number, end: number): boolean {
  const firstComma = bytes.indexOf(COMMA, start);
  const firstEnd = firstComma < 0 || firstComma > end ? end : firstComma;
  let first = decode(bytes, start, firstEnd).trim();
  if (first.length >= 2 && first.startsWith('"') && first.endsWith('"')) first = first.slice(1, -1).trim();
  return first.length > 0 && !NUMBER_RE.test(first);
}

/**
 * Pass 1: header, field count, number of rows; stops at the first ragged row (reported after
 * pass 2 has checked the rows before it, so the first error in file order wins).
 */
function scanRows(bytes: Uint8Array, file: string): CsvLayout {
  const n = bytes.length;
  const layout: CsvLayout = { fields: 0, refLine: 0, headerLine: 0, rows: 0, dataStart: -1, stopAt: n, ragged: undefined };
  let line = 0;
  let i = bomLength(bytes);
  while (i < n) {
    line++;
    const end = lineEnd(bytes, i);
    const start = i;
    i = end + 1;
    if (isBlank(bytes, start, end)) continue;
    const got = countCommas(bytes, start, end) + 1;
    if (layout.fields === 0) {
      layout.fields = got;
      layout.refLine = line;
      if (isHeaderRow(bytes, start, end)) {
        layout.headerLine = line;
        if (got < 2) {
          throw new DataError(file, `header has ${got} field; expected a label column and at least one pixel column`, { line });
        }
        continue;
      }
      if (got < 2) {
        throw new DataError(
          file,
          'row has 1 field; expected the label then the pixels, comma-separated',
          { line, column: 2 },
        );
      }
    } else if (got !== layout.fields) {
      layout.ragged = { line, got };
      layout.stopAt = start;
      break;
    }
    if (layout.dataStart < 0) layout.dataStart = start;
    layout.rows++;
  }
  return layout;
}

/**
 * Pass 2: converts the rows pass 1 counted into `labels` and `images`. Fast path: optional
 * blanks, 1-3 digits, optional blanks; anything else goes to `slowField` for its exact error.
 */
function convertRows(
  bytes: Uint8Array,
  file: string,
  layout: CsvLayout,
  classes: number | undefined,
  labels: Uint8Array,
  images: Uint8Array,
): void {
  const { fields, headerLine, rows, dataStart, stopAt } = layout;
  const features = fields - 1;
  let line = 0;
  // Recount lines up to the first data row for exact line numbers.
  for (let k = bomLength(bytes); k < dataStart; k++) if (bytes[k] === NL) line++;
  let i = dataStart;
  let r = 0;
  while (i < stopAt && r < rows) {
    line++;
    const end = lineEnd(bytes, i);
    const start = i;
    i = end + 1;
    if (line === headerLine || isBlank(bytes, start, end)) continue;
    let j = start;
    const base = r * features - 1;
    for (let c = 0; c < fields; c++) {
      const fieldStart = j;
      let b = bytes[j];
      while (j < end && (b === SP || b === TAB)) b = bytes[++j];
      let v = 0;
      let digits = 0;
      while (j < end && b! >= 48 && b! <= 57) {
        v = v * 10 + (b! - 48);
        digits++;
        b = bytes[++j];
      }
      while (j < end && (b === SP || b === TAB || b === CR)) b = bytes[++j];
      if (digits === 0 || digits > 3 || v > 255 || (j < end && b !== COMMA) || (c === 0 && classes !== undefined && v >= classes)) {
        let fe = bytes.indexOf(COMMA, fieldStart);
        if (fe < 0 || fe > end) fe = end;
        v = slowField(decode(bytes, fieldStart, fe), c === 0, file, line, c + 1, classes);
        j = fe;
      }
      if (c === 0) labels[r] = v;
      else images[base + c] = v;
      j++; // the comma (or past the end on the last field)
    }
    r++;
  }
}

/** The error for the first row whose field count differs from the first row's. */
function raggedRowError(file: string, layout: CsvLayout, ragged: { line: number; got: number }): DataError {
  const { fields, refLine } = layout;
  const { line, got } = ragged;
  const problem =
    got < fields
      ? `row ends after ${got} field${got === 1 ? '' : 's'}, expected ${fields} (as on line ${refLine})`
      : `row has ${got} fields, expected ${fields} (as on line ${refLine})`;
  return new DataError(file, problem, { line, column: Math.min(got, fields) + 1 });
}

/** Parses CSV bytes (already decompressed). `file` names the source in errors. */
export function parseCsv(bytes: Uint8Array, file: string, options: CsvOptions = {}): ImageSet {
  const layout = scanRows(bytes, file);
  const { fields, rows, ragged } = layout;
  if (rows === 0 && ragged === undefined) {
    if (fields === 0) throw new DataError(file, 'no data rows (the file is blank)');
    throw new DataError(file, `no data rows (only the header on line ${layout.headerLine})`);
  }

  const features = fields - 1;
  // rows * features <= file size: every counted row holds features commas.
  const images = new Uint8Array(rows * features);
  const labels = new Uint8Array(rows);
  if (rows > 0) convertRows(bytes, file, layout, options.classes, labels, images);
  if (ragged !== undefined) throw raggedRowError(file, layout, ragged);

  const side = Math.round(Math.sqrt(features));
  const square = side * side === features;
  return {
    count: rows,
    height: square ? side : 1,
    width: square ? side : features,
    features,
    images,
    labels,
  };
}
