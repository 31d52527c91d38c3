/**
 * The native addon's build definitions, install script, loader errors, memory and boundary:
 * - binding.gyp (install-time) and native/CMakeLists.txt (developer) compile the same sources,
 *   with the same per-ISA flags, and never -march=native;
 * - scripts/install-native.mjs never fails an install (no compiler, compile error, unsupported
 *   platform, node-gyp missing), says why in one line, logs to native-build.log and leaves no
 *   stale addon behind; --force fails loudly (run on a temporary copy of the package);
 * - src/kernels/native.ts explains why the addon is unavailable;
 * - tensor memory: zero-filled, detached on free, tracked by allocatedBytes, released by GC;
 * - the raw addon refuses bad arguments with TypeError/RangeError and never crashes.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadNativeAddon, loadNativeKernels, nativeAddonPath, type NativeAddon } from '../src/kernels/native.js';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

// ---------------------------------------------------------------------------------------
// Build definitions
// ---------------------------------------------------------------------------------------

interface GypTarget {
  target_name: string;
  sources?: string[];
  cflags_cc?: string[];
  type?: string;
}
interface Gyp {
  variables: Record<string, string[]>;
  targets: GypTarget[];
  conditions?: [string, { targets?: GypTarget[] }][];
}

function readGyp(): Gyp {
  const text = readFileSync(join(ROOT, 'binding.gyp'), 'utf8')
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n');
  return JSON.parse(text) as Gyp;
}

function gypTargets(gyp: Gyp): { always: GypTarget[]; x64: GypTarget[] } {
  const x64: GypTarget[] = [];
  for (const [condition, body] of gyp.conditions ?? []) {
    expect(condition).toBe("target_arch=='x64'");
    x64.push(...(body.targets ?? []));
  }
  return { always: gyp.targets, x64 };
}

function cmakeList(text: string, name: string): string[] {
  const match = new RegExp(`set\\(${name}\\s+([^)]*)\\)`).exec(text);
  if (!match) throw new Error(`native/CMakeLists.txt has no set(${name} ...)`);
  return match[1]!.split(/\s+/).filter((s) => s !== '');
}

describe('native build definitions', () => {
  const gyp = readGyp();
  const cmake = readFileSync(join(ROOT, 'native', 'CMakeLists.txt'), 'utf8');
  const { always, x64 } = gypTargets(gyp);
  const gypSources = (targets: GypTarget[]) =>
    targets.flatMap((t) => t.sources ?? []).map((s) => s.replace(/^native\//, '')).sort();

  it('compile the same sources (portable ones always, the ISA kernels on x86-64 only)', () => {
    expect(gypSources(always)).toEqual([...cmakeList(cmake, 'DENSETRAIN_SOURCES')].sort());
    expect(gypSources(x64)).toEqual([...cmakeList(cmake, 'DENSETRAIN_X86_SOURCES')].sort());
    expect(gypSources(always)).toContain('src/isa_generic.cc');
    expect(gypSources(x64)).toEqual(['src/isa_avx2.cc', 'src/isa_avx512.cc', 'src/isa_avx512bf16.cc']);
  });

  it('list every C++ source in native/src, and only files that exist', () => {
    const onDisk = readdirSync(join(ROOT, 'native', 'src'))
      .filter((f) => f.endsWith('.cc'))
      .map((f) => `src/${f}`)
      .sort();
    expect([...gypSources(always), ...gypSources(x64)].sort()).toEqual(onDisk);
  });

  it('give each ISA translation unit its own flags, the same in both builds', () => {
    expect(gyp.variables['dt_avx2_flags']).toEqual(cmakeList(cmake, 'DENSETRAIN_AVX2_FLAGS'));
    expect(gyp.variables['dt_avx512_flags']).toEqual(cmakeList(cmake, 'DENSETRAIN_AVX512_FLAGS'));
    expect(gyp.variables['dt_avx512bf16_flags']).toEqual(cmakeList(cmake, 'DENSETRAIN_AVX512BF16_FLAGS'));
    // The bf16 unit adds only -mavx512bf16 to the AVX-512 flags (nothing else newer).
    expect([...gyp.variables['dt_avx512bf16_flags']!].sort()).toEqual([...gyp.variables['dt_avx512_flags']!, '-mavx512bf16'].sort());
    expect(gyp.variables['dt_avx2_flags']).toEqual(expect.arrayContaining(['-mavx2', '-mfma']));
    expect(gyp.variables['dt_avx512_flags']).toEqual(
      expect.arrayContaining(['-mavx512f', '-mavx512dq', '-mavx512bw', '-mavx512vl']),
    );
    const byName = new Map(x64.map((t) => [t.target_name, t]));
    expect(byName.get('densetrain_avx2')?.cflags_cc).toContain('<@(dt_avx2_flags)');
    expect(byName.get('densetrain_avx2')?.cflags_cc).not.toContain('<@(dt_avx512_flags)');
    expect(byName.get('densetrain_avx512')?.cflags_cc).toContain('<@(dt_avx512_flags)');
    expect(byName.get('densetrain_avx512bf16')?.cflags_cc).toContain('<@(dt_avx512bf16_flags)');
    expect(byName.get('densetrain_avx512')?.cflags_cc).not.toContain('<@(dt_avx512bf16_flags)');
    expect(always[0]?.cflags_cc?.some((f) => f.startsWith('-mavx'))).toBe(false);
    expect(cmake).toMatch(/set_source_files_properties\(src\/isa_avx2\.cc PROPERTIES COMPILE_OPTIONS "\$\{DENSETRAIN_AVX2_FLAGS\}"\)/);
    expect(cmake).toMatch(/set_source_files_properties\(src\/isa_avx512\.cc PROPERTIES COMPILE_OPTIONS "\$\{DENSETRAIN_AVX512_FLAGS\}"\)/);
    expect(cmake).toMatch(/set_source_files_properties\(src\/isa_avx512bf16\.cc PROPERTIES COMPILE_OPTIONS "\$\{DENSETRAIN_AVX512BF16_FLAGS\}"\)/);
  });

  it('never build for the build machine (-march=native and friends)', () => {
    const files = [join(ROOT, 'binding.gyp'), join(ROOT, 'native', 'CMakeLists.txt')];
    for (const f of readdirSync(join(ROOT, 'native', 'src'))) files.push(join(ROOT, 'native', 'src', f));
    for (const file of files) {
      expect(readFileSync(file, 'utf8'), file).not.toMatch(/-march=native|-mtune=native|-mcpu=native|\/arch:native/);
    }
  });

  it('use the same compiler settings that change results', () => {
    const common = gyp.variables['dt_cflags_cc']!;
    for (const flag of ['-std=c++17', '-ffp-contract=off', '-fno-math-errno', '-fno-trapping-math', '-fno-exceptions']) {
      expect(common).toContain(flag);
    }
    expect(cmake).toMatch(/CMAKE_CXX_STANDARD 17/);
    for (const flag of ['-ffp-contract=off', '-fno-math-errno', '-fno-trapping-math', '-fno-exceptions']) expect(cmake).toContain(flag);
    expect(cmake).toMatch(/CMAKE_EXPORT_COMPILE_COMMANDS ON/);
    expect(cmake).toMatch(/-fsanitize=address,undefined/);
  });
});

// ---------------------------------------------------------------------------------------
// Install script, on a temporary copy of the package
// ---------------------------------------------------------------------------------------

const temps: string[] = [];
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

function tempPackage(): string {
  const dir = mkdtempSync(join(tmpdir(), 'densetrain-native-'));
  temps.push(dir);
  mkdirSync(join(dir, 'scripts'));
  mkdirSync(join(dir, 'node_modules'));
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  cpSync(join(ROOT, 'binding.gyp'), join(dir, 'binding.gyp'));
  cpSync(join(ROOT, 'scripts', 'install-native.mjs'), join(dir, 'scripts', 'install-native.mjs'));
  cpSync(join(ROOT, 'scripts', 'up-to-date.mjs'), join(dir, 'scripts', 'up-to-date.mjs'));
  cpSync(join(ROOT, 'native', 'src'), join(dir, 'native', 'src'), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules', 'node-addon-api'), join(dir, 'node_modules', 'node-addon-api'));
  symlinkSync(join(ROOT, 'node_modules', 'node-gyp-build'), join(dir, 'node_modules', 'node-gyp-build'));
  return dir;
}

/** Puts the addon this checkout loads into dir's prebuilds/ as the tarball would carry it. */
function addPrebuild(dir: string, tuple = `${process.platform}-${process.arch}`): string {
  const target = join(dir, 'prebuilds', tuple, 'node.napi.glibc.node');
  mkdirSync(join(dir, 'prebuilds', tuple), { recursive: true });
  cpSync(nativeAddonPath(), target);
  return target;
}

function install(dir: string, env: Record<string, string | undefined> = {}, args: string[] = []) {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete childEnv[key];
    else childEnv[key] = value;
  }
  const r = spawnSync(process.execPath, [join(dir, 'scripts', 'install-native.mjs'), ...args], {
    cwd: dir,
    env: childEnv,
    encoding: 'utf8',
    timeout: 15 * 60 * 1000,
  });
  const log = existsSync(join(dir, 'native-build.log')) ? readFileSync(join(dir, 'native-build.log'), 'utf8') : '';
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, log, firstLogLine: log.split('\n')[0] ?? '' };
}

function staleAddon(dir: string): string {
  const path = join(dir, 'build', 'Release', 'densetrain.node');
  mkdirSync(join(dir, 'build', 'Release'), { recursive: true });
  writeFileSync(path, 'stale');
  return path;
}

/** The one line an install prints when the addon is not built. */
function expectFallbackLine(stdout: string, dir: string, reason: RegExp): void {
  const lines = stdout.trim().split('\n');
  expect(lines).toHaveLength(1);
  const m = /^densetrain: native addon not built \((.*)\); using WebAssembly\. Details: (.*)$/.exec(lines[0]!);
  expect(m, stdout).not.toBeNull();
  expect(m![1]).toMatch(reason);
  expect(m![2]).toBe(join(dir, 'native-build.log'));
}

// The sanitizer run (scripts/asan-test.sh) preloads ASan into every child process; building the
// addon with node-gyp under it proves nothing about the addon and takes minutes, so it skips these.
describe.skipIf(process.env['DENSETRAIN_SANITIZED'] === '1')('scripts/install-native.mjs', () => {
  it('with no working compiler (CXX=/bin/false): exits 0, one line, logs why, removes a stale addon', () => {
    const dir = tempPackage();
    const stale = staleAddon(dir);
    const r = install(dir, { CXX: '/bin/false' });
    expect(r.status).toBe(0);
    expectFallbackLine(r.stdout, dir, /no working C\+\+ compiler \(CXX=\/bin\/false does not run\)/);
    expect(r.firstLogLine).toBe('densetrain native build failed: no working C++ compiler (CXX=/bin/false does not run)');
    expect(existsSync(stale)).toBe(false);
  });

  it('with no compiler on PATH at all: exits 0 and says so', () => {
    const dir = tempPackage();
    const r = install(dir, { CXX: undefined, PATH: '/nonexistent' });
    expect(r.status).toBe(0);
    expectFallbackLine(r.stdout, dir, /no working C\+\+ compiler \(c\+\+ not found\)/);
  });

  it('on an unsupported platform, or without node-gyp: exits 0 and says so', () => {
    const dir = tempPackage();
    const stale = staleAddon(dir);
    const platform = install(dir, { DENSETRAIN_NATIVE_PLATFORM: 'sunos-x64' });
    expect(platform.status).toBe(0);
    expectFallbackLine(platform.stdout, dir, /^unsupported platform sunos-x64$/);
    expect(existsSync(stale)).toBe(false);
    const gyp = install(dir, { DENSETRAIN_NODE_GYP: join(dir, 'no-such-node-gyp.js') });
    expect(gyp.status).toBe(0);
    expectFallbackLine(gyp.stdout, dir, /^node-gyp not found at /);
    expect(gyp.firstLogLine).toMatch(/^densetrain native build failed: node-gyp not found at /);
  });

  it('uses a matching prebuilt addon without compiling, even with no compiler; ignores other platforms\' prebuilds', () => {
    const dir = tempPackage();
    addPrebuild(dir);
    const r = install(dir, { CXX: '/bin/false', CC: '/bin/false' });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toMatch(
      new RegExp(`^densetrain: using the prebuilt native addon prebuilds/${process.platform}-${process.arch}/node\\.napi\\.glibc\\.node \\(ISAs usable here: [a-z0-9,]*generic\\)$`),
    );
    expect(r.firstLogLine).toMatch(/^densetrain native build skipped: prebuilt prebuilds\/.*node\.napi\.glibc\.node loads/);
    expect(existsSync(join(dir, 'build'))).toBe(false);

    // Only a prebuild for another platform: the install tries to compile (and says why it could not).
    const other = tempPackage();
    addPrebuild(other, 'sunos-x64');
    const r2 = install(other, { CXX: '/bin/false' });
    expect(r2.status).toBe(0);
    expectFallbackLine(r2.stdout, other, /no working C\+\+ compiler/);
    expect(r2.log).toMatch(/prebuilt addon: none usable here: No native build was found for platform=linux arch=x64/);
  });

  it('with --force, a failure exits non-zero (developers must see it)', () => {
    const dir = tempPackage();
    const r = install(dir, { CXX: '/bin/false' }, ['--force']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/native addon build FAILED \(no working C\+\+ compiler/);
  });

  it(
    'builds the addon offline; then a compile error exits 0, names the error, and leaves no addon behind',
    () => {
      const dir = tempPackage();
      const ok = install(dir);
      expect(ok.status, ok.log.slice(-3000)).toBe(0);
      expect(ok.stdout.trim()).toMatch(/^densetrain: native addon built \(ISAs usable here: [a-z0-9,]*generic\)$/);
      expect(ok.firstLogLine).toMatch(/^densetrain native build succeeded: build\/Release\/densetrain\.node/);
      const addon = join(dir, 'build', 'Release', 'densetrain.node');
      expect(existsSync(addon)).toBe(true);

      // Unchanged sources: a second install (npm install again, or npx linking the folder) keeps
      // the addon instead of rebuilding it.
      const again = install(dir);
      expect(again.status).toBe(0);
      expect(again.stdout.trim()).toMatch(/^densetrain: native addon up to date \(ISAs usable here: [a-z0-9,]*generic\)$/);
      expect(existsSync(addon)).toBe(true);

      writeFileSync(join(dir, 'native', 'src', 'thread_pool.cc'), 'this is not C++;\n', { flag: 'a' });
      const broken = install(dir);
      expect(broken.status).toBe(0);
      expectFallbackLine(broken.stdout, dir, /^compile error: .*thread_pool\.cc:\d+:\d+: error: /);
      expect(broken.firstLogLine).toMatch(/^densetrain native build failed: compile error: .*thread_pool\.cc/);
      expect(existsSync(addon)).toBe(false);
    },
    30 * 60 * 1000,
  );
});

// ---------------------------------------------------------------------------------------
// Loader errors (src/kernels/native.ts)
// ---------------------------------------------------------------------------------------

describe('src/kernels/native.ts load errors', () => {
  it('names a missing or broken DENSETRAIN_NATIVE_PATH in the first line', () => {
    const saved = process.env['DENSETRAIN_NATIVE_PATH'];
    try {
      process.env['DENSETRAIN_NATIVE_PATH'] = join(tmpdir(), 'no-such-densetrain.node');
      expect(() => loadNativeKernels()).toThrow(/^native addon not found: DENSETRAIN_NATIVE_PATH=.*no-such-densetrain\.node does not exist$/);
      const dir = mkdtempSync(join(tmpdir(), 'densetrain-fake-'));
      temps.push(dir);
      const fake = join(dir, 'fake.node');
      writeFileSync(fake, 'not a shared object');
      process.env['DENSETRAIN_NATIVE_PATH'] = fake;
      expect(() => loadNativeKernels()).toThrow(/^native addon failed to load: /);
    } finally {
      if (saved === undefined) delete process.env['DENSETRAIN_NATIVE_PATH'];
      else process.env['DENSETRAIN_NATIVE_PATH'] = saved;
    }
  });

  it('finds build/Release first, then the matching prebuild, and explains in user terms when there is neither', () => {
    // The compiled loader in a package root named densetrain (packageRoot() looks for that name),
    // run in a child process: node-gyp-build reads its platform overrides when it is loaded.
    const dir = mkdtempSync(join(tmpdir(), 'densetrain-nobuild-'));
    temps.push(dir);
    writeFileSync(join(dir, 'package.json'), '{"name":"densetrain","type":"module"}');
    cpSync(join(ROOT, 'dist', 'src', 'kernels'), join(dir, 'dist', 'src', 'kernels'), { recursive: true });
    // The base modules (src/*.ts: first-line, format, ...) the kernels import.
    for (const f of readdirSync(join(ROOT, 'dist', 'src')).filter((f) => f.endsWith('.js'))) cpSync(join(ROOT, 'dist', 'src', f), join(dir, 'dist', 'src', f));
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(join(ROOT, 'node_modules', 'node-gyp-build'), join(dir, 'node_modules', 'node-gyp-build'));
    const locate = (env: Record<string, string> = {}): unknown => {
      const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
      delete childEnv['DENSETRAIN_NATIVE_PATH'];
      if (env['npm_config_arch'] === undefined) delete childEnv['npm_config_arch'];
      const module = JSON.stringify(join(dir, 'dist', 'src', 'kernels', 'native-locate.js'));
      const r = spawnSync(process.execPath, ['-e', `import(${module}).then((m) => process.stdout.write(JSON.stringify(m.locateNativeAddon())))`], {
        env: childEnv,
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout);
    };
    const tuple = `${process.platform}-${process.arch}`;
    const remedy = 'for native speed install a C++ compiler (e.g. apt install g++ make python3) and run "npm rebuild densetrain"';

    expect(locate()).toEqual({
      ok: false,
      reason: `no prebuilt native addon for ${tuple}, and none was compiled at install (the install script did not run); ${remedy}`,
    });
    writeFileSync(join(dir, 'native-build.log'), 'densetrain native build failed: no working C++ compiler (c++ not found)\n\nplatform: ...\n');
    expect(locate()).toEqual({
      ok: false,
      reason: `no prebuilt native addon for ${tuple}, and compiling one at install failed (no working C++ compiler (c++ not found)); ${remedy}`,
    });

    const prebuilt = addPrebuild(dir);
    expect(locate()).toEqual({ ok: true, path: prebuilt, source: 'prebuilt' });
    // The loader's platform override (what the package checks use to simulate a platform with no prebuild).
    expect(locate({ npm_config_arch: 'arm64' })).toEqual({
      ok: false,
      reason: `no prebuilt native addon for ${process.platform}-arm64, and compiling one at install failed (no working C++ compiler (c++ not found)); ${remedy}`,
    });

    mkdirSync(join(dir, 'build', 'Release'), { recursive: true });
    cpSync(nativeAddonPath(), join(dir, 'build', 'Release', 'densetrain.node'));
    expect(locate()).toEqual({ ok: true, path: join(dir, 'build', 'Release', 'densetrain.node'), source: 'compiled' });
  });
});

// ---------------------------------------------------------------------------------------
// Memory and the raw boundary
// ---------------------------------------------------------------------------------------

let addon: NativeAddon | null = null;
let loadError = '';
try {
  addon = loadNativeAddon();
} catch (error) {
  loadError = error instanceof Error ? error.message : String(error);
}

describe.skipIf(!addon)(`native tensor memory${addon ? '' : ` (skipped: ${loadError})`}`, () => {
  it('alloc gives zero-filled views; free detaches them and gives the bytes back', () => {
    const k = loadNativeKernels();
    const before = k.allocatedBytes();
    const t = k.alloc(1001);
    expect(t.data).toBeInstanceOf(Float32Array);
    expect(t.data.length).toBe(1001);
    expect(t.data.every((v) => v === 0)).toBe(true);
    expect(k.allocatedBytes()).toBe(before + 4004);
    const view = t.data;
    view[1000] = 3.5;
    expect(t.data[1000]).toBe(3.5); // the same memory, no copy
    k.free(t);
    expect(t.freed).toBe(true);
    expect(() => t.data).toThrow(RangeError);
    expect(view.length).toBe(0); // the kept view is detached: nothing reaches freed memory
    expect(view[1000]).toBeUndefined();
    expect(k.allocatedBytes()).toBe(before);
    expect(() => k.free(t)).toThrow(/freed/);
    expect(() => k.sumSquares(1, t)).toThrow(/freed/);
    expect(() => addon!.sumSquares(1, view)).toThrow(RangeError);
    expect(() => addon!.free(view)).toThrow(/already been freed/);
  });

  it('memory dropped without free() is released by the garbage collector', () => {
    const r = spawnSync(
      process.execPath,
      [
        '--expose-gc',
        '-e',
        `
        const a = require(process.env.ADDON);
        (function () { for (let i = 0; i < 50; i++) a.alloc(100000)[0] = i; })();
        const held = a.allocatedBytes();
        global.gc();
        setImmediate(() => { global.gc(); setImmediate(() => process.stdout.write(held + ' ' + a.allocatedBytes())); });
      `,
      ],
      { env: { ...process.env, ADDON: nativeAddonPath() }, encoding: 'utf8', timeout: 60_000 },
    );
    expect(r.stderr).toBe('');
    const [held, after] = r.stdout.split(' ').map(Number);
    expect(held).toBe(50 * 400000);
    expect(after).toBeLessThan(held!);
  });
});

describe.skipIf(!addon)(`native raw addon boundary${addon ? '' : ` (skipped: ${loadError})`}`, () => {
  const a = addon!;
  const f = (n: number) => a.alloc(n);
  // Any call below that reached memory wrongly would crash the test process, not just fail.
  const call = (fn: string, ...args: unknown[]) => () => (a as unknown as Record<string, (...x: unknown[]) => unknown>)[fn]!(...args);

  it('gemm refuses short buffers, wrong types, bad sizes and scalars, overlap', () => {
    const A = f(6);
    const B = f(6);
    const C = f(4);
    expect(call('gemm', false, false, 2, 2, 3, 1, A, B, 0, C)).not.toThrow();
    expect(call('gemm', false, false, 2, 3, 3, 1, A, B, 0, C)).toThrow(/gemm: b holds 6 elements but the call needs 9/);
    expect(call('gemm', false, false, 3, 2, 3, 1, A, B, 0, C)).toThrow(/gemm: a holds 6 elements but the call needs 9/);
    expect(call('gemm', false, false, 2, 2, 3, 1, A, B, 0, f(3))).toThrow(RangeError);
    expect(call('gemm', false, false, 2, 2, 3, 1, [1, 2, 3, 4, 5, 6], B, 0, C)).toThrow(TypeError);
    expect(call('gemm', false, false, 2, 2, 3, 1, new Float64Array(6), B, 0, C)).toThrow(/must be a Float32Array, got another typed array/);
    expect(call('gemm', false, false, 2, 2, 3, 1, A, B, 0, null)).toThrow(TypeError);
    expect(call('gemm', 0, false, 2, 2, 3, 1, A, B, 0, C)).toThrow(/transA must be a boolean/);
    expect(call('gemm', false, false, Number.NaN, 2, 3, 1, A, B, 0, C)).toThrow(/m must be an integer/);
    expect(call('gemm', false, false, -1, 2, 3, 1, A, B, 0, C)).toThrow(RangeError);
    expect(call('gemm', false, false, 1.5, 2, 3, 1, A, B, 0, C)).toThrow(RangeError);
    expect(call('gemm', false, false, 2 ** 31, 2, 3, 1, A, B, 0, C)).toThrow(RangeError);
    expect(call('gemm', false, false, '2', 2, 3, 1, A, B, 0, C)).toThrow(TypeError);
    expect(call('gemm', false, false, 2, 2, 3, Number.NaN, A, B, 0, C)).toThrow(/alpha must be finite/);
    expect(call('gemm', false, false, 2, 2, 3, 1, A, B, Infinity, C)).toThrow(/beta must be finite/);
    expect(call('gemm', false, false, 65536, 65536, 1, 1, A, B, 0, C)).toThrow(/larger than any tensor/);
    expect(call('gemm')).toThrow(TypeError);
    const shared = new Float32Array(20);
    expect(call('gemm', false, false, 2, 2, 3, 1, shared.subarray(0, 6), B, 0, shared.subarray(4, 8))).toThrow(/must not share memory/);
    expect(call('gemm', false, false, 2, 2, 3, 1, shared.subarray(0, 6), B, 0, shared.subarray(6, 10))).not.toThrow();
    const detached = new Float32Array(8);
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    expect(call('gemm', false, false, 2, 2, 3, 1, A, B, 0, detached)).toThrow(/freed|detached/);
    // Zero-sized calls touch nothing, even with empty views.
    expect(call('gemm', false, false, 0, 0, 0, 1, new Float32Array(0), new Float32Array(0), 0, new Float32Array(0))).not.toThrow();
  });

  it('denseForward refuses bad arguments and overlapping buffers', () => {
    // rows 2, inF 3, outF 4: x 6, w 12, bias 4, z and h 8.
    const X = f(6);
    const W = f(12);
    const Z = f(8);
    const H = f(8);
    expect(call('denseForward', 2, 3, 4, X, W, f(4), 0, 0, Z, H)).not.toThrow();
    expect(call('denseForward', 2, 3, 4, X, W, null, 3, 0, Z, Z)).not.toThrow(); // h = z, no bias
    expect(call('denseForward', 2, 3, 4, f(5), W, null, 0, 0, Z, H)).toThrow(/x holds 5 elements but the call needs 6/);
    expect(call('denseForward', 2, 3, 4, X, f(11), null, 0, 0, Z, H)).toThrow(/w holds 11 elements but the call needs 12/);
    expect(call('denseForward', 2, 3, 4, X, W, f(3), 0, 0, Z, H)).toThrow(/bias holds 3 elements but the call needs 4/);
    expect(call('denseForward', 2, 3, 4, X, W, null, 0, 0, f(7), H)).toThrow(/z holds 7/);
    expect(call('denseForward', 2, 3, 4, X, W, null, 0, 0, Z, f(7))).toThrow(/h holds 7/);
    expect(call('denseForward', 2, 3, 4, X, W, null, 6, 0, Z, H)).toThrow(/kind must be an integer in \[0, 5\]/);
    expect(call('denseForward', 2, 3, 4, X, W, null, 1, 'a', Z, H)).toThrow(/alpha must be a number/);
    expect(call('denseForward', 2, -3, 4, X, W, null, 0, 0, Z, H)).toThrow(/inF must be/);
    expect(call('denseForward', 2, 3, '4', X, W, null, 0, 0, Z, H)).toThrow(/outF must be/);
    expect(call('denseForward', 65536, 65536, 1, X, W, null, 0, 0, Z, H)).toThrow(/larger than any tensor/);
    expect(call('denseForward', 2, 3, 4, [1, 2, 3, 4, 5, 6], W, null, 0, 0, Z, H)).toThrow(TypeError);
    expect(call('denseForward', 2, 3, 4, X, W, null, 0, 0, Z)).toThrow(TypeError);
    const shared = new Float32Array(40);
    expect(call('denseForward', 2, 3, 4, shared.subarray(0, 6), W, null, 0, 0, shared.subarray(5, 13), H)).toThrow(/z must not share memory with x, w or bias/);
    expect(call('denseForward', 2, 3, 4, X, shared.subarray(0, 12), null, 0, 0, shared.subarray(11, 19), H)).toThrow(/z must not share memory/);
    expect(call('denseForward', 2, 3, 4, X, W, shared.subarray(0, 4), 0, 0, shared.subarray(3, 11), H)).toThrow(/z must not share memory/);
    expect(call('denseForward', 2, 3, 4, shared.subarray(0, 6), W, null, 0, 0, Z, shared.subarray(2, 10))).toThrow(/h must not share memory with x, w or bias/);
    expect(call('denseForward', 2, 3, 4, X, W, shared.subarray(20, 24), 0, 0, Z, shared.subarray(16, 24))).toThrow(/h must not share memory/);
    expect(call('denseForward', 2, 3, 4, X, W, null, 0, 0, shared.subarray(0, 8), shared.subarray(4, 12))).toThrow(/h must be z itself or not share memory with it/);
    expect(call('denseForward', 2, 3, 4, shared.subarray(0, 6), shared.subarray(6, 18), shared.subarray(18, 22), 0, 0, shared.subarray(22, 30), shared.subarray(30, 38))).not.toThrow();
    // Zero-sized calls touch nothing, even with empty views.
    expect(call('denseForward', 0, 0, 0, new Float32Array(0), new Float32Array(0), null, 0, 0, new Float32Array(0), new Float32Array(0))).not.toThrow();
    expect(call('denseForward', 2, 0, 4, new Float32Array(0), new Float32Array(0), null, 0, 0, Z, H)).not.toThrow();
  });

  it('element-wise entry points refuse bad arguments', () => {
    const x = f(12);
    const y = f(12);
    const z = f(12);
    const w = f(12);
    expect(call('biasActivation', 3, 4, x, f(3), 0, 0, y)).toThrow(/bias holds 3 elements but the call needs 4/);
    expect(call('biasActivation', 3, 4, x, null, 6, 0, y)).toThrow(/kind must be an integer in \[0, 5\]/);
    expect(call('biasActivation', 3, 4, x, null, 1, 'a', y)).toThrow(/alpha must be a number/);
    expect(call('biasActivation', 3, 5, x, null, 0, 0, y)).toThrow(RangeError);
    expect(call('activationBackward', 3, 4, 2, 0.1, x, y, z, f(11))).toThrow(/dz holds 11/);
    expect(call('biasGrad', 3, 4, x, f(3))).toThrow(/db holds 3/);
    expect(call('biasGrad', 3, 4, x, x.subarray(0, 4))).toThrow(/must not share memory/);
    const labels = f(3);
    expect(call('softmaxCrossEntropy', 3, 4, x, labels, y, null)).not.toThrow();
    for (const bad of [4, -1, 1.5, Number.NaN, Infinity]) {
      labels[1] = bad;
      expect(call('softmaxCrossEntropy', 3, 4, x, labels, y, null)).toThrow(/labels\[1\] = .* is not a class index in \[0, 4\)/);
    }
    labels[1] = 0;
    expect(call('softmaxCrossEntropy', 0, 4, x, labels, y, null)).toThrow(/rows must be an integer in \[1,/);
    expect(call('softmaxCrossEntropy', 3, 4, x, f(2), y, null)).toThrow(/labels holds 2/);
    expect(call('softmaxCrossEntropy', 3, 4, x, labels, y, f(5))).toThrow(/dlogits holds 5/);
    expect(call('softmax', 3, 4, x, f(2))).toThrow(/probs holds 2/);
    expect(call('sgdStep', 12, x, y, null, 0.1, 0.9, false, 0)).toThrow(/velocity is required when momentum != 0/);
    expect(call('sgdStep', 12, x, y, z, 0.1, 0.9, 'no', 0)).toThrow(/nesterov must be a boolean/);
    expect(call('sgdStep', 12, x, x, z, 0.1, 0.9, false, 0)).toThrow(/must not share memory/);
    expect(call('sgdStep', 13, x, y, z, 0.1, 0.9, false, 0)).toThrow(RangeError);
    expect(call('adamStep', 12, x, y, z, w, 1e-3, 1, 0.999, 1e-8, 0, 1)).toThrow(/beta1 must be in \[0, 1\)/);
    expect(call('adamStep', 12, x, y, z, w, 1e-3, 0.9, 0.999, 1e-8, 0, 0)).toThrow(/step must be an integer in \[1,/);
    expect(call('adamStep', 12, x, y, z, z, 1e-3, 0.9, 0.999, 1e-8, 0, 1)).toThrow(/must not share memory/);
    expect(call('adamStep', 12, x, y, z, w, Number.NaN, 0.9, 0.999, 1e-8, 0, 1)).toThrow(/lr must be finite/);
    expect(call('sumSquares', 13, x)).toThrow(/x holds 12/);
    expect(call('sumSquares', 12, {})).toThrow(/x must be a Float32Array, got an object/);
  });

  it('alloc, free, setThreads and setIsa refuse bad arguments', () => {
    expect(call('alloc', 0)).toThrow(RangeError);
    expect(call('alloc', -5)).toThrow(RangeError);
    expect(call('alloc', a.maxLength + 1)).toThrow(RangeError);
    expect(call('alloc', '10')).toThrow(TypeError);
    expect(call('free', new Float32Array(4))).toThrow(/returned by alloc\(\) of this addon/);
    const t = f(8);
    expect(call('free', t.subarray(1))).toThrow(/returned by alloc\(\) of this addon/);
    expect(call('free', {})).toThrow(TypeError);
    expect(a.isAllocated(t)).toBe(true);
    expect(a.isAllocated(new Float32Array(8))).toBe(false);
    expect(call('setThreads', 0)).toThrow(RangeError);
    expect(call('setThreads', a.maxThreads + 1)).toThrow(RangeError);
    expect(call('setIsa', 7)).toThrow(TypeError);
    a.free(t);
    expect(a.isAllocated(t)).toBe(false);
  });
});
