/**
 * Backend selection (src/kernels/index.ts): DENSETRAIN_BACKEND / the backend option, forcing a
 * backend that cannot load, auto's preference order, backendInfo()'s skipped reasons, and the
 * test suites' own DENSETRAIN_REQUIRE_BACKENDS rule.
 *
 * Selection caches each load per process, so scenarios with a backend that fails are run on a
 * fresh copy of the module graph (vi.resetModules) with the loaders replaced (vi.doMock), and
 * one scenario runs in a child vitest process with the native addon path pointing nowhere.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import * as selection from '../src/kernels/index.js';
import { createReferenceKernels } from '../src/kernels/reference.js';
import type { BackendName, Kernels } from '../src/kernels/types.js';
import { backendStatus, requiredBackendFailures, requiredBackends } from './helpers/backends.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

let savedEnv: string | undefined;
beforeEach(() => {
  savedEnv = process.env['DENSETRAIN_BACKEND'];
  delete process.env['DENSETRAIN_BACKEND'];
});
afterEach(() => {
  if (savedEnv === undefined) delete process.env['DENSETRAIN_BACKEND'];
  else process.env['DENSETRAIN_BACKEND'] = savedEnv;
  vi.doUnmock('../src/kernels/native.js');
  vi.doUnmock('../src/kernels/wasm.js');
  vi.doUnmock('../src/kernels/reference.js');
  vi.resetModules();
});

describe('selection with the real loaders (whatever this machine can load)', () => {
  const PREFERENCE: BackendName[] = ['native', 'wasm', 'reference'];

  it('parseBackendChoice accepts auto and the three names, and names the source of a bad value', () => {
    for (const v of ['auto', 'native', 'wasm', 'reference']) expect(selection.parseBackendChoice(v, 'X')).toBe(v);
    expect(() => selection.parseBackendChoice('gpu', 'DENSETRAIN_BACKEND')).toThrow(RangeError);
    expect(() => selection.parseBackendChoice('gpu', 'DENSETRAIN_BACKEND')).toThrow(/^DENSETRAIN_BACKEND must be one of auto, native, wasm, reference; got "gpu"/);
    expect(() => selection.parseBackendChoice('Native', '--backend')).toThrow(/^--backend /);
  });

  it('an invalid DENSETRAIN_BACKEND is an error naming the variable; empty means auto', () => {
    process.env['DENSETRAIN_BACKEND'] = 'fastest';
    expect(() => selection.selectKernels()).toThrow(/DENSETRAIN_BACKEND must be one of .*"fastest"/);
    expect(() => selection.backendInfo()).toThrow(/DENSETRAIN_BACKEND/);
    process.env['DENSETRAIN_BACKEND'] = '';
    expect(selection.selectKernels().info.backend).toBe(PREFERENCE.find((n) => selection.tryLoadBackend(n).ok));
  });

  it('an invalid backend option names "backend" and wins over a valid environment variable', () => {
    process.env['DENSETRAIN_BACKEND'] = 'reference';
    expect(() => selection.selectKernels({ backend: 'turbo' as BackendName })).toThrow(/^backend must be one of/);
  });

  it.each(PREFERENCE)('forcing %s: loads it, or throws with the load reason (option and environment variable)', (name) => {
    const result = selection.tryLoadBackend(name);
    if (result.ok) {
      const { kernels, info } = selection.selectKernels({ backend: name });
      expect(kernels.name).toBe(name);
      expect(info.backend).toBe(name);
      expect(info.skipped).toEqual([]);
      process.env['DENSETRAIN_BACKEND'] = name;
      expect(selection.getKernels()).toBe(kernels); // loaded once, shared
    } else {
      const message = `the ${name} backend was requested but cannot load: ${result.reason}`;
      expect(() => selection.selectKernels({ backend: name })).toThrow(message);
      process.env['DENSETRAIN_BACKEND'] = name;
      expect(() => selection.getKernels()).toThrow(message);
    }
  });

  it('auto picks the first backend that loads and reports why the ones before it were skipped', () => {
    const first = PREFERENCE.findIndex((n) => selection.tryLoadBackend(n).ok);
    const expectedSkipped = PREFERENCE.slice(0, first).map((n) => {
      const r = selection.tryLoadBackend(n);
      return `${n}: ${r.ok ? '' : r.reason}`;
    });
    const info = selection.backendInfo({ backend: 'auto' });
    expect(info.backend).toBe(PREFERENCE[first]);
    expect(info.skipped).toEqual(expectedSkipped);
    expect(selection.backendInfo()).toEqual(info);
    expect(info.threads).toBeGreaterThanOrEqual(1);
    expect(typeof info.isa).toBe('string');
  });

  it('tryLoadBackend never throws, caches its answer, and reasons are one line', () => {
    for (const n of PREFERENCE) {
      const a = selection.tryLoadBackend(n);
      expect(selection.tryLoadBackend(n)).toBe(a);
      if (!a.ok) expect(a.reason).not.toContain('\n');
    }
    expect(selection.tryLoadBackend('reference').ok).toBe(true);
  });

  it('the threads option is applied, and an impossible thread count is a RangeError', () => {
    expect(selection.selectKernels({ backend: 'reference', threads: 1 }).info.threads).toBe(1);
    expect(() => selection.selectKernels({ backend: 'reference', threads: 2 })).toThrow(RangeError);
    expect(() => selection.selectKernels({ backend: 'reference', threads: 0 })).toThrow(/^threads /);
  });

  it('formatBackendInfo: one line, thread plural, skipped reasons appended', () => {
    expect(selection.formatBackendInfo({ backend: 'native', isa: 'avx2-fma', threads: 2, skipped: [] })).toBe('native (avx2-fma, 2 threads)');
    expect(
      selection.formatBackendInfo({ backend: 'reference', isa: 'js', threads: 1, skipped: ['native: not built', 'wasm: missing'] }),
    ).toBe('reference (js, 1 thread); skipped native: not built; wasm: missing');
  });
});

/** A stand-in for a backend that loads: the reference kernels reporting another name. */
function standIn(name: BackendName, isa: string): Kernels {
  const k = createReferenceKernels();
  return { ...k, name, info: () => ({ backend: name, isa, threads: 1 }) };
}

async function withLoaders(loaders: { native?: () => Kernels; wasm?: () => Kernels; reference?: () => Kernels }) {
  vi.resetModules();
  if (loaders.native) vi.doMock('../src/kernels/native.js', () => ({ loadNativeKernels: loaders.native }));
  if (loaders.wasm) vi.doMock('../src/kernels/wasm.js', () => ({ loadWasmKernels: loaders.wasm }));
  if (loaders.reference) vi.doMock('../src/kernels/reference.js', () => ({ createReferenceKernels: loaders.reference }));
  return import('../src/kernels/index.js');
}

const failing = (message: string) =>
  vi.fn((): Kernels => {
    throw new Error(message);
  });

describe('selection with failing loaders (fresh module graph per scenario)', () => {
  it('native fails: auto picks wasm, skipped gives the first line of the reason; forcing native throws it', async () => {
    const native = failing('native addon not found: build/Release/densetrain.node\n  at some frame');
    const wasm = vi.fn(() => standIn('wasm', 'simd128'));
    const sel = await withLoaders({ native, wasm });
    const info = sel.backendInfo();
    expect(info.backend).toBe('wasm');
    expect(info.skipped).toEqual(['native: native addon not found: build/Release/densetrain.node']);
    expect(sel.formatBackendInfo(info)).toBe('wasm (simd128, 1 thread); skipped native: native addon not found: build/Release/densetrain.node');
    expect(() => sel.getKernels({ backend: 'native' })).toThrow(
      'the native backend was requested but cannot load: native addon not found: build/Release/densetrain.node',
    );
    process.env['DENSETRAIN_BACKEND'] = 'native';
    expect(() => sel.getKernels()).toThrow(/the native backend was requested but cannot load/);
    // Each loader ran once, however often selection asked.
    expect(native).toHaveBeenCalledTimes(1);
    expect(wasm).toHaveBeenCalledTimes(1);
  });

  it('native and wasm fail: auto falls back to reference with both reasons, in preference order', async () => {
    const sel = await withLoaders({ native: failing('no compiler'), wasm: failing('wasm module not built') });
    const info = sel.backendInfo();
    expect(info.backend).toBe('reference');
    expect(info.skipped).toEqual(['native: no compiler', 'wasm: wasm module not built']);
    expect(() => sel.selectKernels({ backend: 'wasm' })).toThrow('the wasm backend was requested but cannot load: wasm module not built');
    expect(sel.selectKernels({ backend: 'reference' }).info.skipped).toEqual([]);
  });

  it('nothing loads: one error listing every backend and its reason', async () => {
    const sel = await withLoaders({ native: failing('a'), wasm: failing('b'), reference: failing('c') });
    expect(() => sel.selectKernels()).toThrow('no densetrain backend could load:\n  native: a\n  wasm: b\n  reference: c');
  });

  it('a loader throwing a non-Error is still reported, not rethrown', async () => {
    const sel = await withLoaders({
      native: () => {
        throw 'plain string failure';
      },
      wasm: () => standIn('wasm', 'simd128'),
    });
    expect(sel.tryLoadBackend('native')).toEqual({ ok: false, reason: 'plain string failure' });
    expect(sel.backendInfo().backend).toBe('wasm');
  });
});

describe('DENSETRAIN_REQUIRE_BACKENDS (the suites\' CI rule)', () => {
  it('parses a comma list and reports unknown names', () => {
    expect(requiredBackends({})).toEqual({ names: [], errors: [] });
    expect(requiredBackends({ DENSETRAIN_REQUIRE_BACKENDS: 'native, wasm' })).toEqual({ names: ['native', 'wasm'], errors: [] });
    expect(requiredBackends({ DENSETRAIN_REQUIRE_BACKENDS: 'native,gpu' }).errors[0]).toMatch(/unknown backend "gpu"/);
  });

  it('a required backend that does not load is a failure carrying its reason; an optional one is not', () => {
    const load = (name: BackendName) =>
      name === 'reference' ? { ok: true as const, kernels: createReferenceKernels() } : { ok: false as const, reason: `${name} broke` };
    const required = backendStatus({ DENSETRAIN_REQUIRE_BACKENDS: 'native,wasm' }, load);
    expect(required.loaded.map((b) => b.name)).toEqual(['reference']);
    expect(requiredBackendFailures(required)).toEqual([
      'DENSETRAIN_REQUIRE_BACKENDS requires the native backend, but it cannot load: native broke',
      'DENSETRAIN_REQUIRE_BACKENDS requires the wasm backend, but it cannot load: wasm broke',
    ]);
    const optional = backendStatus({}, load);
    expect(requiredBackendFailures(optional)).toEqual([]);
    expect(optional.missing.map((m) => m.name)).toEqual(['native', 'wasm']);
  });

  it('end to end: a suite run with DENSETRAIN_REQUIRE_BACKENDS=native and no addon fails, naming the reason', () => {
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([key]) => !key.startsWith('VITEST') && key !== 'DENSETRAIN_REQUIRE_BACKENDS'),
    );
    const run = (extra: Record<string, string>) =>
      spawnSync(process.execPath, [join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run', 'test/kernels.safety.test.ts', '-t', 'DENSETRAIN_REQUIRE_BACKENDS'], {
        cwd: ROOT,
        env: { ...env, ...extra },
        encoding: 'utf8',
        timeout: 120_000,
      });
    const failed = run({ DENSETRAIN_REQUIRE_BACKENDS: 'native', DENSETRAIN_NATIVE_PATH: join(ROOT, 'does-not-exist.node') });
    expect(failed.status, failed.stdout + failed.stderr).toBe(1);
    expect(failed.stdout + failed.stderr).toMatch(/DENSETRAIN_REQUIRE_BACKENDS requires the native backend, but it cannot load: \S/);
  });
});
