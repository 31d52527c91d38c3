/**
 * Numbers as people read them, the same in the terminal and in every HTML page (report, compare,
 * sweep, tune): one place, so a loss or a percentage never reads two ways. A missing or
 * non-finite value is MISSING, except that a loss or number that overflowed says so (Infinity, NaN).
 */

/** What a table shows where there is no value. */
export const MISSING = '–';

type Maybe = number | null | undefined;

const present = (v: Maybe): v is number => v !== null && v !== undefined && Number.isFinite(v);

/** 1234567 -> "1,234,567". */
export function formatCount(n: Maybe): string {
  return present(n) ? Math.round(n).toLocaleString('en-US') : MISSING;
}

/** 0.95123 -> "95.12%" (`digits` after the point). */
export function formatPercent(fraction: Maybe, digits = 2): string {
  return present(fraction) ? `${(fraction * 100).toFixed(digits)}%` : MISSING;
}

/**
 * Any number with at most `digits` decimals and no trailing zeros (0.05, 0.9, 64); very small or
 * very large ones in exponent form (1.00e-4), so a learning rate of 1e-5 is not "0".
 */
export function formatNumber(v: Maybe, digits = 4): string {
  if (v === null || v === undefined) return MISSING;
  if (!Number.isFinite(v)) return String(v);
  if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e6)) return v.toExponential(2);
  return Number(v.toFixed(digits)).toString();
}

/** A loss with four decimals (0.1723), so a column of them lines up; below 0.001 in exponent form. */
export function formatLoss(loss: Maybe): string {
  if (loss === null || loss === undefined) return MISSING;
  if (!Number.isFinite(loss)) return String(loss);
  return loss !== 0 && Math.abs(loss) < 1e-3 ? loss.toExponential(2) : loss.toFixed(4);
}

/** 0.173 -> "0.17 s", 45.31 -> "45.3 s", 125 -> "2 min 5 s", 3725 -> "1 h 2 min". */
export function formatSeconds(seconds: Maybe): string {
  if (!present(seconds)) return MISSING;
  if (seconds < 10) return `${seconds.toFixed(2)} s`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/**
 * A class probability that tells confident predictions apart: "97.31%" where two decimals of a
 * percent can; above 99.99% "1 − 2.1e-10", where every such image would print "100.00%"; below
 * 0.01% "3.2e-7". `rest` is the sum of the other classes' probabilities (1 - p, but exact where p
 * has rounded to 1 in float32); 0 means every other probability underflowed float32.
 */
export function formatProbability(p: Maybe, rest?: Maybe): string {
  if (!present(p)) return MISSING;
  const others = present(rest) ? rest : 1 - p;
  if (others < 1e-4) return others <= 0 ? '1 − <1e-45' : `1 − ${others.toExponential(1)}`;
  if (p < 1e-4) return p.toExponential(1);
  return formatPercent(p);
}

/** A setting as tables show it: layers as 784-128-10, numbers with at most `digits` significant digits. */
export function formatSetting(value: unknown, digits = 4): string {
  if (Array.isArray(value)) return value.join('-');
  if (typeof value === 'number') return String(Number(value.toPrecision(digits)));
  return value === undefined || value === null ? MISSING : String(value);
}

/** "1 thread", "2 threads". */
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** The backend line everything prints: "native (avx512, 2 threads)". */
export function formatBackend(b: { backend: string; isa: string; threads: number }): string {
  return `${b.backend} (${b.isa}, ${plural(b.threads, 'thread')})`;
}
