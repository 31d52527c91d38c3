/**
 * One image file -> the grey bytes a model takes (height x width, light digit on dark, like MNIST).
 *
 * PNG only (every colour type and bit depth, decoded by pngjs): the header is checked before
 * anything is decoded (a 0x0 image, or one claiming more than MAX_PIXELS, is refused from its
 * 33 first bytes), and pngjs inflates no more than the size the header claims. Colour becomes
 * luminance (ITU-R BT.601 weights, as PIL's convert('L')); transparent pixels are composited over
 * white (how viewers show them). Then, with `invert`, 255 - value. An image of another size is
 * padded to the target's aspect ratio with its background (so the digit keeps its shape) and
 * resampled with pica's Lanczos-3 filter.
 *
 * The background (the median of the border pixels) decides the "looks inverted" hint: MNIST
 * backgrounds are dark, so a light one after the optional inversion means the caller probably
 * wants the other setting.
 */
import picaModule, { type Pica, type PicaOptions } from 'pica';
import { PNG } from 'pngjs';
import { DataError } from './errors.js';
import { describeLeadingBytes, openDataFile, readExactly, readWholeFile } from './files.js';
import { firstLine } from '../first-line.js';

export const PNG_SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
/** Largest image accepted, in pixels (40 megapixels: 160 MB as RGBA while it is resized). */
export const MAX_PIXELS = 40_000_000;
/** Largest PNG file read. */
const MAX_PNG_BYTES = 256 * 1024 * 1024;

export interface ImageTarget {
  height: number;
  width: number;
}

export interface PreparedImage {
  /** height x width grey bytes, ready for the model's pixel scaling. */
  pixels: Uint8Array;
  /** The file's own size and PNG colour description. */
  source: { width: number; height: number; description: string };
  /** The median border value (0-255) after the optional inversion: the background; high means light. */
  background: number;
  /** The border is light: the image looks like a dark digit on a light background (the opposite of MNIST). */
  looksInverted: boolean;
}

const COLOR_TYPES: Record<number, string> = { 0: 'grey', 2: 'RGB', 3: 'palette', 4: 'grey+alpha', 6: 'RGBA' };

export function isPng(head: Uint8Array): boolean {
  return head.length >= 8 && PNG_SIGNATURE.every((b, i) => head[i] === b);
}

/** Width, height and colour from the IHDR chunk (the 33 first bytes), checked before any decoding. */
export function readPngHeader(head: Uint8Array, file: string): { width: number; height: number; description: string } {
  if (!isPng(head)) throw new DataError(file, `not a PNG file (starts with ${describeLeadingBytes(head)})`);
  if (head.length < 33) throw new DataError(file, `truncated PNG: ${head.length} bytes, too short for its header`);
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const chunkType = String.fromCharCode(...head.subarray(12, 16));
  if (view.getUint32(8) !== 13 || chunkType !== 'IHDR') throw new DataError(file, 'damaged PNG: the first chunk is not a 13-byte IHDR header');
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const depth = head[24]!;
  const colour = COLOR_TYPES[head[25]!];
  if (width === 0 || height === 0) throw new DataError(file, `the PNG claims a ${width}x${height} image: nothing to predict`);
  if (width * height > MAX_PIXELS) {
    throw new DataError(file, `the PNG claims ${width}x${height} pixels, more than the ${MAX_PIXELS / 1e6} megapixels densetrain decodes; scale it down first`);
  }
  if (colour === undefined) throw new DataError(file, `damaged PNG: unknown colour type ${head[25]}`);
  return { width, height, description: `${width}x${height} ${depth}-bit ${colour}` };
}

/** Reads and decodes a PNG file to RGBA bytes (8 bits per channel; 16-bit files are rescaled by pngjs). */
async function decodePngFile(file: string): Promise<{ rgba: Uint8Array; width: number; height: number; description: string }> {
  const opened = await openDataFile(file);
  let bytes: Uint8Array;
  let header: ReturnType<typeof readPngHeader>;
  try {
    const head = new Uint8Array(Math.min(33, opened.size));
    await readExactly(opened, file, head, 0, head.length, 0);
    header = readPngHeader(head, file);
    bytes = await readWholeFile(opened, file, MAX_PNG_BYTES);
  } finally {
    await opened.handle.close().catch(() => undefined);
  }
  let png: { width: number; height: number; data: Uint8Array };
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (error) {
    const why = firstLine(error);
    throw new DataError(file, `truncated or damaged PNG (${header.description} claimed; the decoder says: ${why})`);
  }
  if (png.width !== header.width || png.height !== header.height || png.data.length !== png.width * png.height * 4) {
    throw new DataError(file, `damaged PNG: decoded ${png.width}x${png.height} from a header claiming ${header.width}x${header.height}`);
  }
  return { rgba: png.data, width: png.width, height: png.height, description: header.description };
}

/** RGBA -> grey: BT.601 luminance, composited over white by alpha. */
export function luminance(rgba: Uint8Array, pixels: number): Uint8Array {
  const grey = new Uint8Array(pixels);
  for (let i = 0; i < pixels; i++) {
    const r = rgba[4 * i]!;
    const g = rgba[4 * i + 1]!;
    const b = rgba[4 * i + 2]!;
    const a = rgba[4 * i + 3]! / 255;
    const y = 0.299 * r + 0.587 * g + 0.114 * b;
    grey[i] = Math.round(y * a + 255 * (1 - a));
  }
  return grey;
}

/**
 * The median of the outermost rows and columns: the background's value, even where strokes touch
 * the edge (a mean would drift towards them).
 */
export function borderMedian(grey: Uint8Array, width: number, height: number): number {
  const histogram = new Uint32Array(256);
  let n = 0;
  const add = (v: number) => {
    histogram[v]!++;
    n++;
  };
  for (let x = 0; x < width; x++) {
    add(grey[x]!);
    if (height > 1) add(grey[(height - 1) * width + x]!);
  }
  for (let y = 1; y < height - 1; y++) {
    add(grey[y * width]!);
    if (width > 1) add(grey[y * width + width - 1]!);
  }
  let seen = 0;
  for (let v = 0; v < 256; v++) {
    seen += histogram[v]!;
    if (seen * 2 >= n) return v;
  }
  return 255;
}

/** The image centred on a canvas of the target's aspect ratio, the margin filled with `fill`. */
function padToAspect(grey: Uint8Array, width: number, height: number, target: ImageTarget, fill: number): { grey: Uint8Array; width: number; height: number } {
  // Compare width/height with target.width/target.height without division.
  const wide = width * target.height;
  const tall = height * target.width;
  if (wide === tall) return { grey, width, height };
  const newWidth = wide > tall ? width : Math.round((height * target.width) / target.height);
  const newHeight = wide > tall ? Math.round((width * target.height) / target.width) : height;
  const out = new Uint8Array(newWidth * newHeight).fill(fill);
  const left = Math.floor((newWidth - width) / 2);
  const top = Math.floor((newHeight - height) / 2);
  for (let y = 0; y < height; y++) out.set(grey.subarray(y * width, (y + 1) * width), (top + y) * newWidth + left);
  return { grey: out, width: newWidth, height: newHeight };
}

// pica's type declarations read as CommonJS (default under .default) while Node loads its ES
// module build (default is the factory): accept either shape.
const createPica = ((picaModule as unknown as { default?: unknown }).default ?? picaModule) as (options?: PicaOptions) => Pica;
let pica: Pica | undefined;

/** Lanczos-3 resampling of a grey image (pica works on RGBA: grey is copied into R, G and B). */
export async function resizeGrey(grey: Uint8Array, width: number, height: number, target: ImageTarget): Promise<Uint8Array> {
  if (width === target.width && height === target.height) return grey;
  pica ??= createPica({ features: ['js', 'wasm'] });
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < grey.length; i++) {
    const v = grey[i]!;
    rgba[4 * i] = v;
    rgba[4 * i + 1] = v;
    rgba[4 * i + 2] = v;
    rgba[4 * i + 3] = 255;
  }
  const out = await pica.resizeBuffer({ src: rgba, width, height, toWidth: target.width, toHeight: target.height, filter: 'lanczos3' });
  const result = new Uint8Array(target.width * target.height);
  for (let i = 0; i < result.length; i++) result[i] = out[4 * i]!;
  return result;
}

/** A PNG file as the model's input bytes (see the file comment). */
export async function readImageForModel(file: string, target: ImageTarget, options: { invert?: boolean } = {}): Promise<PreparedImage> {
  const { rgba, width, height, description } = await decodePngFile(file);
  let grey = luminance(rgba, width * height);
  if (options.invert) for (let i = 0; i < grey.length; i++) grey[i] = 255 - grey[i]!;
  const background = borderMedian(grey, width, height);
  const padded = padToAspect(grey, width, height, target, background);
  grey = await resizeGrey(padded.grey, padded.width, padded.height, target);
  return { pixels: grey, source: { width, height, description }, background, looksInverted: background > 127 };
}
