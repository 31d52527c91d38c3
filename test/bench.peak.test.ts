/**
 * src/bench/peak.ts and src/bench/openblas.ts bookkeeping: flops per cycle per ISA, the --peak /
 * DENSETRAIN_PEAK_GFLOPS override, and how OpenBLAS rows attach to densetrain rows. No timing
 * assertions (the JS clock estimate is not run here).
 */
import { describe, expect, it } from 'vitest';
import type { BenchRow } from '../src/bench/kernels.js';
import { attachOpenBlas, type OpenBlasResult } from '../src/bench/openblas.js';
import { flopsPerCycle, parsePeakGflops, physicalCores, resolvePeak } from '../src/bench/peak.js';

describe('bench peak', () => {
  it('flops per cycle per core', () => {
    expect(flopsPerCycle('native', 'avx2', 'x64').flops).toBe(32);
    expect(flopsPerCycle('native', 'avx512', 'x64').flops).toBe(64);
    expect(flopsPerCycle('native', 'generic', 'x64').flops).toBe(16);
    expect(flopsPerCycle('wasm', 'simd128', 'x64').flops).toBe(16);
    expect(flopsPerCycle('wasm', 'simd128', 'x64').basis).toMatch(/no FMA/);
    expect(flopsPerCycle('reference', 'js').flops).toBeNull();
  });

  it('parses overrides', () => {
    expect(parsePeakGflops('103.7')).toBe(103.7);
    for (const bad of ['', ' ', '0', '-5', 'abc', 'Infinity']) expect(parsePeakGflops(bad)).toBeNull();
  });

  it('an override sets the clock and every backend peak', () => {
    const infos = [
      { backend: 'native' as const, isa: 'avx2', threads: 64 },
      { backend: 'wasm' as const, isa: 'simd128', threads: 1 },
      { backend: 'reference' as const, isa: 'js', threads: 1 },
    ];
    const cores = physicalCores();
    const fromEnv = resolvePeak(infos, [], { env: { DENSETRAIN_PEAK_GFLOPS: '96' } });
    expect(fromEnv.clock.source).toBe('DENSETRAIN_PEAK_GFLOPS');
    expect(fromEnv.clock.ghz).toBeCloseTo(3, 10);
    const native = fromEnv.backends.find((b) => b.backend === 'native')!;
    expect(native.cores).toBe(Math.min(64, cores));
    expect(native.gflops).toBeCloseTo(96 * Math.min(64, cores), 8);
    expect(fromEnv.backends.find((b) => b.backend === 'wasm')!.gflops).toBeCloseTo(48, 8);
    expect(fromEnv.backends.find((b) => b.backend === 'reference')!.gflops).toBeNull();
    // --peak wins over the environment.
    const fromOption = resolvePeak(infos, [], { override: 64, env: { DENSETRAIN_PEAK_GFLOPS: '96' } });
    expect(fromOption.clock.source).toBe('--peak');
    expect(fromOption.clock.ghz).toBeCloseTo(2, 10);
    expect(() => resolvePeak(infos, [], { env: { DENSETRAIN_PEAK_GFLOPS: 'fast' } })).toThrow(/DENSETRAIN_PEAK_GFLOPS/);
    // No override and no estimate: no peak, and a line saying how to give one.
    const none = resolvePeak(infos, [], { env: {}, noEstimate: true });
    expect(none.backends.every((b) => b.gflops === null)).toBe(true);
    expect(none.lines[0]).toMatch(/--peak/);
  });

  it('OpenBLAS rows attach by form, shape and thread count', () => {
    const row = (backend: 'native' | 'wasm', threads: number, gflops: number | null): BenchRow => ({
      backend, isa: 'x', threads, kernel: 'gemm', variant: 'NT', shape: '8x8x8', medianMs: 1, samples: 1, gflops, elementsPerSec: null,
    });
    const rows = [row('native', 4, 50), row('wasm', 1, 10), row('native', 3, 5)];
    const result: OpenBlasResult = {
      ok: true, pythonCommand: 'python3', unsetEnv: {}, lines: [],
      runs: [4, 1].map((threads) => ({
        python: 'p', pythonVersion: '3', numpy: '2', threads, env: {}, blas: { source: 's' },
        rows: [{ shape: '8x8x8', form: 'NT' as const, threads, medianMs: 1, samples: 1, gflops: threads * 25 }],
      })),
    };
    attachOpenBlas(rows, result);
    expect(rows.map((r) => [r.openblasGflops, r.openblasRatio])).toEqual([[100, 0.5], [25, 0.4], [undefined, undefined]]);
  });
});
