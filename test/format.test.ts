/** The one set of number formatters the terminal and every HTML page share. */
import { describe, expect, it } from 'vitest';
import { formatBackend, formatCount, formatLoss, formatNumber, formatPercent, formatProbability, formatSeconds, formatSetting, MISSING, plural } from '../src/format.js';
import { firstLine } from '../src/first-line.js';

describe('formatters', () => {
  it('missing and non-finite values', () => {
    for (const f of [formatCount, formatPercent, formatSeconds, formatProbability]) {
      expect(f(null)).toBe(MISSING);
      expect(f(undefined)).toBe(MISSING);
      expect(f(Number.NaN)).toBe(MISSING);
    }
    // A loss or number that overflowed says so.
    expect(formatLoss(Number.POSITIVE_INFINITY)).toBe('Infinity');
    expect(formatLoss(Number.NaN)).toBe('NaN');
    expect(formatNumber(Number.NaN)).toBe('NaN');
    expect(formatLoss(null)).toBe(MISSING);
  });

  it('counts, percentages, losses, numbers, settings', () => {
    expect(formatCount(1234567.4)).toBe('1,234,567');
    expect(formatPercent(0.95123)).toBe('95.12%');
    expect(formatPercent(0.95123, 1)).toBe('95.1%');
    expect(formatLoss(0.17234)).toBe('0.1723');
    expect(formatLoss(0.1)).toBe('0.1000');
    expect(formatLoss(4.2e-5)).toBe('4.20e-5');
    expect(formatLoss(0)).toBe('0.0000');
    expect(formatNumber(0.05)).toBe('0.05');
    expect(formatNumber(1e-5)).toBe('1.00e-5');
    expect(formatNumber(0.123456789, 6)).toBe('0.123457');
    expect(formatSetting([784, 128, 10])).toBe('784-128-10');
    expect(formatSetting(0.0123456789)).toBe('0.01235');
    expect(formatSetting(0.0123456789, 6)).toBe('0.0123457');
    expect(formatSetting(undefined)).toBe(MISSING);
    expect(formatSetting('relu')).toBe('relu');
  });

  it('seconds read as people say them', () => {
    expect(formatSeconds(0.1734)).toBe('0.17 s');
    expect(formatSeconds(45.31)).toBe('45.3 s');
    expect(formatSeconds(125)).toBe('2 min 5 s');
    expect(formatSeconds(3725)).toBe('1 h 2 min');
  });

  it('probabilities near 1 and near 0 stay distinguishable', () => {
    expect(formatProbability(0.9731, 0.0269)).toBe('97.31%');
    // Three images that all round to 1 in float32: the sum of the other classes tells them apart.
    const shown = [2.1e-10, 3.7e-8, 0].map((rest) => formatProbability(1, rest));
    expect(shown).toEqual(['1 − 2.1e-10', '1 − 3.7e-8', '1 − <1e-45']);
    expect(new Set(shown).size).toBe(3);
    expect(formatProbability(0.99999, 1e-5)).toBe('1 − 1.0e-5');
    // Without the rest: 1 - p.
    expect(formatProbability(0.5)).toBe('50.00%');
    expect(formatProbability(3.2e-7)).toBe('3.2e-7');
  });

  it('the backend line and plurals', () => {
    expect(formatBackend({ backend: 'native', isa: 'avx512', threads: 2 })).toBe('native (avx512, 2 threads)');
    expect(formatBackend({ backend: 'wasm', isa: 'simd128', threads: 1 })).toBe('wasm (simd128, 1 thread)');
    expect(plural(0, 'run')).toBe('0 runs');
  });

  it('firstLine: the first non-empty line of an error message, trimmed', () => {
    expect(firstLine(new Error('cannot open x\n  at y\n'))).toBe('cannot open x');
    expect(firstLine(new Error('\n  compiler said:  \ndetails'))).toBe('compiler said:');
    expect(firstLine('plain text')).toBe('plain text');
    expect(firstLine(42)).toBe('42');
    expect(firstLine(new Error(''))).toBe('');
  });
});
