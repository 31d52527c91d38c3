/**
 * Loading the PyTorch golden cases (test/fixtures/golden/FORMAT.md) into densetrain's naming:
 * fixture W is [in, out] (y = x·W + b); we store W as [out, in] like nn.Linear, so weights are
 * transposed here. Names map W1/b1/prelu1 -> layers.0.weight/bias/prelu_slope, and so on.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface FixtureTensor {
  shape: number[];
  data: number[];
}

export const GOLDEN_DIR = join(import.meta.dirname, '..', 'fixtures', 'golden');

export function readGolden<T = Record<string, unknown>>(name: string): T {
  return JSON.parse(readFileSync(join(GOLDEN_DIR, `${name}.json`), 'utf8')) as T;
}

/** W1 -> layers.0.weight, b2 -> layers.1.bias, prelu1 -> layers.0.prelu_slope. */
export function ourName(fixtureName: string): string {
  const m = /^(W|b|prelu)(\d+)$/.exec(fixtureName);
  if (!m) throw new Error(`unexpected fixture parameter ${fixtureName}`);
  const layer = Number(m[2]) - 1;
  return `layers.${layer}.${m[1] === 'W' ? 'weight' : m[1] === 'b' ? 'bias' : 'prelu_slope'}`;
}

/** A fixture tensor in our layout (weights transposed to [out, in]), as float64 values. */
export function toOurLayout(fixtureName: string, t: FixtureTensor): Float64Array {
  if (!fixtureName.startsWith('W')) return Float64Array.from(t.data);
  const [rows, cols] = t.shape as [number, number]; // [in, out]
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let o = 0; o < cols; o++) out[o * rows + i] = t.data[i * cols + o]!;
  return out;
}

/** Every fixture parameter (or gradient) in our names and layout. */
export function paramsInOurLayout(params: Record<string, FixtureTensor>): Record<string, Float64Array> {
  const out: Record<string, Float64Array> = {};
  for (const [name, t] of Object.entries(params)) out[ourName(name)] = toOurLayout(name, t);
  return out;
}

export function toFloat32(values: Record<string, Float64Array>): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const [k, v] of Object.entries(values)) out[k] = Float32Array.from(v);
  return out;
}

/**
 * Largest violation of |actual - expected| <= atol + rtol * |expected|, as a ratio
 * (<= 1 passes), with the worst index, for readable failures.
 */
export function worstViolation(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number): { ratio: number; index: number; actual: number; expected: number } {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != expected ${expected.length}`);
  let worst = { ratio: 0, index: -1, actual: 0, expected: 0 };
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const ratio = Number.isFinite(a) ? Math.abs(a - e) / (atol + rtol * Math.abs(e)) : Infinity;
    if (ratio > worst.ratio || Number.isNaN(ratio)) worst = { ratio: Number.isNaN(ratio) ? Infinity : ratio, index: i, actual: a, expected: e };
  }
  return worst;
}

export function maxAbs(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]!));
  return m;
}
