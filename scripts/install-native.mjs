#!/usr/bin/env node
// Makes sure the native addon is there: the prebuilt binary the npm tarball carries
// (prebuilds/<platform>-<arch>/, see scripts/prebuild.mjs) if it matches and loads here, else
// build/Release/densetrain.node compiled with npm's own node-gyp.
//
//   node scripts/install-native.mjs           npm's "install" script: never fails the install.
//   node scripts/install-native.mjs --force   developer rebuild: prints the compiler output and
//                                             exits non-zero when the build fails.
//
// Whatever happens, the full output goes to native-build.log at the package root. Its first
// line says how the build ended ("densetrain native build succeeded: ...", "densetrain native
// build skipped: prebuilt ..." or "densetrain native build failed: <reason>");
// src/kernels/native-locate.ts quotes that reason when no addon is found. A failed build never
// leaves a densetrain.node behind.
//
// Environment:
//   DENSETRAIN_SKIP_NATIVE=1     do not build (the wasm backend is used)
//   npm_config_node_gyp          node-gyp to run (npm sets it for install scripts)
//   DENSETRAIN_NODE_GYP          node-gyp to run, and no other (overrides everything; for tests)
//   npm_config_nodedir           Node headers directory (passed as --nodedir)
//   DENSETRAIN_NATIVE_PLATFORM   pretend to be this "<platform>-<arch>" (for tests)
//   CXX                          C++ compiler (default c++), checked before node-gyp runs
import { isUpToDate } from './up-to-date.mjs';
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const logPath = join(root, 'native-build.log');
const addonPath = join(root, 'build', 'Release', 'densetrain.node');
const force = process.argv.includes('--force');
const env = process.env;

const SUPPORTED = new Set(['linux-x64', 'linux-arm64', 'darwin-x64', 'darwin-arm64', 'win32-x64', 'win32-arm64']);

/** Everything that goes into native-build.log after its first line. */
const details = [];
function note(text) {
  details.push(text);
  if (force) process.stderr.write(`${text}\n`);
}

function firstLine(text) {
  return String(text ?? '').split('\n').map((l) => l.trim()).find((l) => l !== '') ?? '';
}

function writeLog(head) {
  try {
    writeFileSync(logPath, `${head}\n\n${details.join('\n')}\n`);
  } catch {
    // A read-only package directory still installs; the message below says where the log would be.
  }
}

function removeAddon() {
  rmSync(addonPath, { force: true });
}

function fail(reason) {
  const oneLine = reason.replace(/\s+/g, ' ').trim().slice(0, 300);
  removeAddon();
  writeLog(`densetrain native build failed: ${oneLine}`);
  if (force) {
    process.stderr.write(`densetrain: native addon build FAILED (${oneLine}). Details: ${logPath}\n`);
    process.exit(1);
  }
  process.stdout.write(`densetrain: native addon not built (${oneLine}); using WebAssembly. Details: ${logPath}\n`);
  process.exit(0);
}

function run(command, args, options = {}) {
  return spawnSync(command, args, { cwd: root, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
}

/** node-gyp's JS entry point, or null. */
function findNodeGyp() {
  const explicit = env.DENSETRAIN_NODE_GYP;
  if (explicit !== undefined && explicit !== '') return existsSync(explicit) ? explicit : null;
  const candidates = [];
  if (env.npm_config_node_gyp) candidates.push(env.npm_config_node_gyp);
  const bin = dirname(process.execPath);
  const rel = join('node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  candidates.push(join(bin, '..', 'lib', rel), join(bin, rel));
  const prefix = run(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['prefix', '-g'], { shell: process.platform === 'win32' });
  if (prefix.status === 0) {
    const p = prefix.stdout.trim();
    candidates.push(join(p, 'lib', rel), join(p, rel));
  }
  candidates.push(join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates.find((c) => existsSync(c)) ?? null;
}

/** A local Node headers directory for an offline build, or null (node-gyp then fetches headers). */
function findNodeDir() {
  if (env.npm_config_nodedir) return env.npm_config_nodedir;
  const prefix = resolve(dirname(process.execPath), '..');
  if (existsSync(join(prefix, 'include', 'node', 'common.gypi')) && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
    return prefix;
  }
  if (existsSync('/usr/include/node/node_api.h')) return '/usr';
  return null;
}

/** The reason a compiler run failed, from its output. */
function reasonFromOutput(output, status) {
  const lines = output.split('\n').map((l) => l.trim());
  const compileError = lines.find((l) => /(^|\s|:)(fatal )?error( [A-Z]+\d+)?:/.test(l) && !l.startsWith('gyp'));
  if (compileError) return `compile error: ${compileError}`;
  const noise = /^gyp ERR! (System|command|cwd|node -v|node-gyp -v|not ok|configure error|build error|stack\s+at )/;
  const gypError = lines.find((l) => l.startsWith('gyp ERR!') && !noise.test(l) && l.replace(/^gyp ERR!\s*(stack\s*)?/, '') !== '');
  if (gypError) return `node-gyp: ${gypError.replace(/^gyp ERR!\s*(stack\s*)?/, '')}`;
  return `node-gyp exited with status ${status}`;
}

/**
 * The prebuilt addon node-gyp-build finds for this platform (PREBUILDS_ONLY: ignoring
 * build/), loaded in a clean child process: { file, isas }, or null when none matches or loads.
 */
function prebuildCheck() {
  const childEnv = { ...env, PREBUILDS_ONLY: '1' };
  delete childEnv.DENSETRAIN_ISA;
  delete childEnv.DENSETRAIN_THREADS;
  const probe = run(
    process.execPath,
    [
      '-e',
      `try {
         const file = require('node-gyp-build').path(${JSON.stringify(root)});
         process.stdout.write(JSON.stringify({ file, isas: require(file).supportedIsas().join(',') }));
       } catch (error) {
         process.stderr.write(String(error && error.message ? error.message : error));
         process.exit(1);
       }`,
    ],
    { env: childEnv },
  );
  if (probe.status !== 0) {
    note(`prebuilt addon: none usable here: ${firstLine(probe.stderr) || `status ${probe.status}`}`);
    return null;
  }
  const { file, isas } = JSON.parse(probe.stdout);
  return { file: file.startsWith(root) ? file.slice(root.length + 1) : file, isas };
}

/** What the addon is built from: a change to any of these makes an existing addon stale. */
const NATIVE_INPUTS = ['native/src', 'binding.gyp', 'scripts/install-native.mjs', 'node_modules/node-addon-api/package.json'];

let lastLoadError = '';
/**
 * Loads the addon in a clean child process (no forced ISA or thread count) and returns the ISAs
 * it can use here, or null (the reason in lastLoadError) if it does not load.
 */
function loadCheck() {
  const childEnv = { ...env };
  delete childEnv.DENSETRAIN_ISA;
  delete childEnv.DENSETRAIN_THREADS;
  const probe = run(
    process.execPath,
    ['-e', `const a = require(${JSON.stringify(addonPath)}); process.stdout.write(a.supportedIsas().join(','))`],
    { env: childEnv },
  );
  if (probe.status !== 0) {
    note(`load check:\n${probe.stdout}${probe.stderr}`);
    lastLoadError = firstLine(probe.stderr) || `status ${probe.status}`;
    return null;
  }
  return probe.stdout.trim();
}

function main() {
  if (env.DENSETRAIN_SKIP_NATIVE === '1' && !force) {
    removeAddon();
    writeLog('densetrain native build failed: skipped because DENSETRAIN_SKIP_NATIVE=1');
    process.stdout.write('densetrain: native addon build skipped (DENSETRAIN_SKIP_NATIVE=1); using WebAssembly.\n');
    process.exit(0);
  }

  const platform = env.DENSETRAIN_NATIVE_PLATFORM || `${process.platform}-${process.arch}`;
  note(`platform: ${platform}, node ${process.version}, package root: ${root}`);

  // The npm tarball's normal case: a prebuilt binary for this platform loads, nothing to compile.
  // An addon already compiled here (a developer clone) is still kept up to date below.
  if (!force && !existsSync(addonPath)) {
    const prebuilt = prebuildCheck();
    if (prebuilt !== null) {
      writeLog(`densetrain native build skipped: prebuilt ${prebuilt.file} loads (ISAs usable here: ${prebuilt.isas})`);
      process.stdout.write(`densetrain: using the prebuilt native addon ${prebuilt.file} (ISAs usable here: ${prebuilt.isas})\n`);
      process.exit(0);
    }
  }

  if (!SUPPORTED.has(platform)) fail(`unsupported platform ${platform}`);

  const nodeGyp = findNodeGyp();
  if (nodeGyp === null) {
    fail(env.DENSETRAIN_NODE_GYP ? `node-gyp not found at ${env.DENSETRAIN_NODE_GYP}` : 'node-gyp not found (npm normally provides it)');
  }
  note(`node-gyp: ${nodeGyp}`);

  if (!platform.startsWith('win32')) {
    const cxx = env.CXX && env.CXX.trim() !== '' ? env.CXX.trim() : 'c++';
    const [cxxCommand, ...cxxArgs] = cxx.split(/\s+/);
    const probe = run(cxxCommand, [...cxxArgs, '--version']);
    if (probe.error || probe.status !== 0) {
      note(`compiler probe: ${cxx} --version -> ${probe.error ? probe.error.message : `status ${probe.status}`}\n${probe.stdout ?? ''}${probe.stderr ?? ''}`);
      fail(`no working C++ compiler (${cxx === 'c++' ? 'c++ not found' : `CXX=${cxx} does not run`})`);
    }
    note(`compiler: ${cxx}: ${firstLine(probe.stdout)}`);
    const make = env.MAKE || 'make';
    const makeProbe = run(make, ['--version']);
    if (makeProbe.error || makeProbe.status !== 0) fail(`${make} not found (needed by node-gyp)`);
  }

  // An addon newer than every native source (a repeated npm install, or npx linking this
  // folder) is kept if it still loads; --force always rebuilds.
  if (!force && isUpToDate(addonPath, NATIVE_INPUTS.map((p) => join(root, p)))) {
    const isas = loadCheck();
    if (isas !== null) {
      process.stdout.write(`densetrain: native addon up to date (ISAs usable here: ${isas})\n`);
      process.exit(0);
    }
  }

  const args = [nodeGyp, 'rebuild'];
  const nodedir = findNodeDir();
  if (nodedir !== null) args.push(`--nodedir=${nodedir}`);
  args.push('--jobs=max');
  note(`command: ${process.execPath} ${args.join(' ')}`);

  removeAddon();
  const started = Date.now();
  const build = run(process.execPath, args, { stdio: force ? ['ignore', 'pipe', 'pipe'] : 'pipe', timeout: 20 * 60 * 1000 });
  const output = `${build.stdout ?? ''}${build.stderr ?? ''}`;
  note(output);
  note(`node-gyp finished in ${((Date.now() - started) / 1000).toFixed(1)} s with status ${build.status}${build.signal ? ` (signal ${build.signal})` : ''}`);
  if (build.error) fail(`node-gyp could not run: ${build.error.message}`);
  if (build.status !== 0) fail(reasonFromOutput(output, build.status));
  if (!existsSync(addonPath)) fail('node-gyp succeeded but build/Release/densetrain.node is missing');

  const isas = loadCheck();
  if (isas === null) fail(`the built addon does not load: ${lastLoadError}`);
  writeLog(`densetrain native build succeeded: build/Release/densetrain.node (ISAs usable here: ${isas})`);
  process.stdout.write(`densetrain: native addon built (ISAs usable here: ${isas})\n`);
  process.exit(0);
}

try {
  main();
} catch (error) {
  fail(`unexpected error in install script: ${error instanceof Error ? error.message : String(error)}`);
}
