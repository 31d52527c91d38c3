#!/usr/bin/env node
// Builds the WebAssembly kernels: assembly/ (AssemblyScript) -> dist/wasm/densetrain.wasm (not build/: node-gyp's rebuild deletes build/, which would take a shipped module with it).
//
//   node scripts/build-wasm.mjs               release build (what ships): densetrain.wasm (SIMD128) and
//                                             densetrain-relaxed.wasm (the same kernels with
//                                             relaxed-SIMD FMA; src/kernels/wasm.ts loads it
//                                             where the runtime validates it)
//   node scripts/build-wasm.mjs --wat         also writes build/wasm-debug/densetrain.wat (for reading;
//                                             outside dist/, which package.json "files" ships)
//   node scripts/build-wasm.mjs --out <file>  writes elsewhere (tests); a .wat and the relaxed
//                                             build (<file>-relaxed.wasm) go next to it
//   node scripts/build-wasm.mjs --entry <ts>  compiles another entry file (tests of the failure path)
//
// Uses the assemblyscript devDependency's compiler API (no network). Compiler options live in
// asconfig.json. Exits non-zero with one clear line (plus the compiler's diagnostics) on failure.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isUpToDate } from './up-to-date.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function option(name) {
  const i = process.argv.indexOf(name);
  if (i < 0) return undefined;
  const value = process.argv[i + 1];
  if (value === undefined || value.startsWith('--')) fail(`${name} needs a value`);
  return resolve(value);
}

const customOut = option('--out');
const outFile = customOut ?? join(root, 'dist', 'wasm', 'densetrain.wasm');
const watFile = customOut ? customOut.replace(/\.wasm$/, '') + '.wat' : join(root, 'build', 'wasm-debug', 'densetrain.wat');
const entry = option('--entry') ?? join(root, 'assembly', 'index.ts');
const wantWat = process.argv.includes('--wat');
/** Where the relaxed-SIMD build of `file` goes. */
const relaxedFile = (file) => file.replace(/\.wasm$/, '') + '-relaxed.wasm';

function fail(message, detail) {
  process.stderr.write(`build-wasm: ${message}\n`);
  if (detail) process.stderr.write(`${detail.trimEnd()}\n`);
  process.exit(1);
}

// The default release build is skipped when the module is newer than everything it is built
// from (a repeated npm install, or npx linking this folder); --force always rebuilds.
const defaultBuild = customOut === undefined && option('--entry') === undefined && !wantWat;
if (defaultBuild && !process.argv.includes('--force')) {
  const inputs = ['assembly', 'asconfig.json', 'scripts/build-wasm.mjs', 'node_modules/assemblyscript/package.json'];
  if ([outFile, relaxedFile(outFile)].every((f) => isUpToDate(f, inputs.map((p) => join(root, p))))) {
    process.stdout.write(`build-wasm: ${relative(root, outFile)} is up to date\n`);
    process.exit(0);
  }
}

let asc;
try {
  asc = await import('assemblyscript/asc');
} catch (error) {
  fail(
    'the AssemblyScript compiler (devDependency "assemblyscript") is not installed; run npm install',
    error instanceof Error ? error.message : String(error),
  );
}

mkdirSync(dirname(outFile), { recursive: true });
if (wantWat) mkdirSync(dirname(watFile), { recursive: true });

/** Checks the module's exports and its one import (the shared memory); throws what is wrong. */
function checkModule(bytes) {
  const module = new WebAssembly.Module(bytes);
  const exports = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
  for (const name of ['memory', 'alloc', 'free', 'gemm', 'gemmStrided', 'gemmSetScratch', 'biasActivation', 'softmaxCrossEntropy', 'adamStep']) {
    if (!exports.has(name)) throw new Error(`missing export ${name}`);
  }
  // Its only import is the shared memory (asconfig.json: importMemory + sharedMemory, so the
  // worker threads of src/kernels/wasm-pool.ts run the same module over the same memory).
  const imports = WebAssembly.Module.imports(module).map((i) => `${i.module}.${i.name}:${i.kind}`);
  if (imports.length !== 1 || imports[0] !== 'env.memory:memory') {
    throw new Error(`the module must import only env.memory, got ${JSON.stringify(imports)}`);
  }
}

/**
 * The relaxed build cannot be compiled here when this runtime does not enable relaxed SIMD by
 * default (Node 20): it is checked in a child started with V8's flag instead.
 */
function checkRelaxedModule(file, bytes) {
  if (WebAssembly.validate(bytes)) return checkModule(bytes);
  const code = `(${checkModule.toString()})(require('node:fs').readFileSync(${JSON.stringify(file)}))`;
  const r = spawnSync(process.execPath, ['--experimental-wasm-relaxed-simd', '-e', code], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error((r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').slice(0, 6).join('\n'));
}

/** Compiles assembly/ with `extraArgs` into `target` (via a temporary file, so a loader never sees half a module). */
async function build(target, extraArgs, check, wat) {
  const tmpFile = `${target}.${process.pid}.tmp`;
  const args = [
    relative(root, entry),
    '--config',
    join(root, 'asconfig.json'),
    '--target',
    'release',
    '--baseDir',
    root,
    '--outFile',
    relative(root, tmpFile),
    ...extraArgs,
  ];
  if (wat) args.push('--textFile', relative(root, watFile));
  let stderrText = '';
  const stderr = {
    write(chunk) {
      stderrText += typeof chunk === 'string' ? chunk : new TextDecoder().decode(chunk);
      return true;
    },
  };
  const started = Date.now();
  let result;
  try {
    result = await asc.main(args, { stdout: process.stdout, stderr });
  } catch (error) {
    fail('the AssemblyScript compiler crashed', error instanceof Error ? (error.stack ?? error.message) : String(error));
  }
  if (result.error) {
    rmSync(tmpFile, { force: true });
    fail(`compiling ${relative(root, entry)} failed: ${result.error.message}`, stderrText);
  }
  if (!existsSync(tmpFile)) fail(`the compiler reported success but wrote no ${relative(root, tmpFile)}`, stderrText);
  // Validate what was written: it must compile and export the kernels the loader expects.
  try {
    check(tmpFile, readFileSync(tmpFile));
  } catch (error) {
    rmSync(tmpFile, { force: true });
    fail(`${relative(root, target)} is not a valid densetrain module`, error instanceof Error ? error.message : String(error));
  }
  renameSync(tmpFile, target);
  if (stderrText.trim() !== '') process.stderr.write(stderrText);
  const size = statSync(target).size;
  process.stdout.write(`build-wasm: wrote ${relative(root, target)} (${size} bytes) in ${Date.now() - started} ms\n`);
}

await build(outFile, [], (_file, bytes) => checkModule(bytes), wantWat);
await build(relaxedFile(outFile), ['--enable', 'relaxed-simd'], checkRelaxedModule, false);
