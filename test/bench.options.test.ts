/**
 * `densetrain bench` passes commander's options object to runBench; `node dist/src/bench/run.js`
 * parses its own argv into the same object. Both reach the one check of the values.
 */
import { describe, expect, it } from 'vitest';
import { BenchUsageError, parseBenchArgs, runBench, type BenchIo } from '../src/bench/run.js';
import { InputError } from '../src/input-error.js';

const silent: BenchIo = { out: () => {}, err: () => {} };

describe('bench options', () => {
  it('parses the developers argv into the options object the CLI passes', () => {
    expect(parseBenchArgs(['train', '--backend', 'reference', '--no-openblas', '--vs-torch', '--epochs', '2', '--quick'])).toEqual({
      suite: 'train',
      backend: 'reference',
      openblas: false,
      vsTorch: true,
      vsTfjs: false,
      epochs: '2',
      quick: true,
      help: false,
    });
    expect(parseBenchArgs([])).toEqual({ openblas: true, vsTorch: false, vsTfjs: false, quick: false, help: false });
  });

  it('refuses unknown options and a second suite as usage errors', () => {
    expect(() => parseBenchArgs(['--bogus'])).toThrow(BenchUsageError);
    expect(() => parseBenchArgs(['kernels', 'train'])).toThrow(/expected at most one suite, got kernels train/);
  });

  it('checks the values before running anything, and a bad one is an input error (exit 2)', async () => {
    const cases: [Parameters<typeof runBench>[0], RegExp][] = [
      [{ suite: 'bogus' }, /^unknown suite "bogus" \(kernels, train or all\)$/],
      [{ suite: 'kernels', epochs: '3' }, /^--epochs applies to the train suite$/],
      [{ suite: 'train', epochs: '0' }, /^--epochs must be an integer from 1 to 100/],
      [{ suite: 'kernels', shapes: '8x8' }, /^--shapes: "8x8" is not MxKxN/],
      [{ suite: 'train', vsTorch: true, backend: 'nope' }, /--backend must be one of all, auto, native, wasm, reference/],
    ];
    for (const [options, message] of cases) {
      const error = await runBench(options, silent, { defaultJsonFile: false }).catch((e: unknown) => e);
      expect(error, JSON.stringify(options)).toBeInstanceOf(BenchUsageError);
      expect(error).toBeInstanceOf(InputError);
      expect((error as Error).message).toMatch(message);
    }
  });
});
