/**
 * Dataset images as grayscale PNGs (pngjs), upscaled by pixel replication so small digits stay
 * crisp in any browser.
 */
import { PNG } from 'pngjs';
import type { ImageSet } from '../data/types.js';

/** Display shape of an image set: CSV sets stored as 1 x features become square when they can. */
export function displayShape(set: Pick<ImageSet, 'height' | 'width' | 'features'>): { height: number; width: number } {
  if (set.height === 1 && set.features > 1) {
    const side = Math.round(Math.sqrt(set.features));
    if (side * side === set.features) return { height: side, width: side };
  }
  return { height: set.height, width: set.width };
}

/**
 * An 8-bit grayscale PNG of `height x width` bytes (row-major, 0 black .. 255 white), each
 * pixel repeated `scale x scale` times.
 */
export function encodeGrayPng(pixels: Uint8Array, height: number, width: number, scale = 3): Buffer {
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 1 || width < 1) {
    throw new RangeError(`image shape must be positive integers, got ${height} x ${width}`);
  }
  if (!Number.isInteger(scale) || scale < 1) throw new RangeError(`scale must be a positive integer, got ${scale}`);
  if (pixels.length !== height * width) {
    throw new RangeError(`image holds ${pixels.length} bytes, expected ${height} x ${width} = ${height * width}`);
  }
  const W = width * scale;
  const H = height * scale;
  const png = new PNG({ width: W, height: H, colorType: 0, inputColorType: 0, bitDepth: 8, inputHasAlpha: false });
  // pngjs keeps RGBA internally; with inputColorType 0 the sync writer reads one byte per pixel.
  const data = Buffer.alloc(W * H);
  for (let y = 0; y < H; y++) {
    const src = Math.floor(y / scale) * width;
    for (let x = 0; x < W; x++) data[y * W + x] = pixels[src + Math.floor(x / scale)]!;
  }
  png.data = data;
  return PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth: 8 });
}

/** The bytes of image `index` of a set. */
export function imagePixels(set: ImageSet, index: number): Uint8Array {
  if (!Number.isInteger(index) || index < 0 || index >= set.count) {
    throw new RangeError(`image index ${index} outside [0, ${set.count})`);
  }
  return set.images.subarray(index * set.features, (index + 1) * set.features);
}

/** A data: URI of image `index` as an upscaled grayscale PNG. */
export function imageDataUri(set: ImageSet, index: number, scale = 3): string {
  const { height, width } = displayShape(set);
  return `data:image/png;base64,${encodeGrayPng(imagePixels(set, index), height, width, scale).toString('base64')}`;
}
