/**
 * Statistics over repeats of one configuration (seeds seed, seed+1, ...): mean, sample
 * standard deviation, min, max and n. Values that are not finite (a diverged repeat has no
 * meaningful loss) are counted apart and never averaged in.
 */

export interface Spread {
  /** Finite values averaged. */
  n: number;
  mean: number | null;
  /** Sample standard deviation (n - 1); null below two values. */
  std: number | null;
  min: number | null;
  max: number | null;
}

export function spread(values: readonly (number | null | undefined)[]): Spread {
  const finite = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  const n = finite.length;
  if (n === 0) return { n, mean: null, std: null, min: null, max: null };
  const mean = finite.reduce((a, v) => a + v, 0) / n;
  const std = n < 2 ? null : Math.sqrt(finite.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1));
  return { n, mean, std, min: Math.min(...finite), max: Math.max(...finite) };
}

/** "91.20 ± 0.31%" (percent) or "0.2812 ± 0.0100"; "–" without values; a single value has no ±. */
export function formatSpread(s: Spread, options: { percent?: boolean; digits?: number } = {}): string {
  if (s.mean === null) return '–';
  const scale = options.percent ? 100 : 1;
  const digits = options.digits ?? (options.percent ? 2 : 4);
  const unit = options.percent ? '%' : '';
  const mean = (s.mean * scale).toFixed(digits);
  return s.std === null ? `${mean}${unit}` : `${mean} ± ${(s.std * scale).toFixed(digits)}${unit}`;
}

/** Per-layer spread of vectors of equal length (e.g. learned PReLU slopes, one per hidden layer). */
export function spreadPerIndex(vectors: readonly (readonly number[])[]): Spread[] {
  const length = Math.max(0, ...vectors.map((v) => v.length));
  return Array.from({ length }, (_, i) => spread(vectors.map((v) => v[i])));
}
