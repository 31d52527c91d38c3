#!/usr/bin/env node
// Builds the prebuilt native addon that the npm tarball carries, for the platform this runs on:
//
//   prebuilds/<platform>-<arch>/node.napi[.glibc|.musl].node
//
// (prebuildify's names, which node-gyp-build, the loader in src/kernels/native-locate.ts,
// matches). Built with cmake-js from native/CMakeLists.txt in Release, with the C++ runtime
// linked statically (DENSETRAIN_PORTABLE) so the binary needs only libc and Node-API: one file
// serves every Node >= 20 and, through the run-time ISA dispatch, every x86-64 CPU.
//
// `npm pack` and `npm publish` run this (the "prepack" script). It fails loudly: a tarball
// without its prebuild would silently cost users native speed. After building, the binary is
// loaded in a child process to prove it works and to print the ISAs it can use here.
//
//   node scripts/prebuild.mjs            build (skipped when the prebuild is newer than its sources)
//   node scripts/prebuild.mjs --force    always rebuild
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isUpToDate } from './up-to-date.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const force = process.argv.includes('--force');
const tuple = `${process.platform}-${process.arch}`;
// node-gyp-build's own rule for the C library: LIBC if set, else musl on Alpine, else glibc.
const libc = process.platform === 'linux' ? process.env.LIBC || (existsSync('/etc/alpine-release') ? 'musl' : 'glibc') : null;
const fileName = `node.napi${libc ? `.${libc}` : ''}.node`;
const target = join(root, 'prebuilds', tuple, fileName);
const buildDir = join(root, 'native', 'build', 'prebuild');
const INPUTS = ['native/src', 'native/CMakeLists.txt', 'scripts/prebuild.mjs', 'node_modules/node-addon-api/package.json'];

function die(message) {
  process.stderr.write(`prebuild: FAILED: ${message}\n`);
  process.exit(1);
}

function run(command, args, options = {}) {
  const r = spawnSync(command, args, { cwd: root, stdio: 'inherit', ...options });
  if (r.error) die(`${command} could not run: ${r.error.message}`);
  if (r.status !== 0) die(`${command} ${args.join(' ')} exited with status ${r.status}`);
  return r;
}

function loadCheck(file) {
  const probe = spawnSync(
    process.execPath,
    ['-e', `process.stdout.write(require(${JSON.stringify(file)}).supportedIsas().join(','))`],
    { encoding: 'utf8', env: { ...process.env, DENSETRAIN_ISA: '', DENSETRAIN_THREADS: '' } },
  );
  if (probe.status !== 0) die(`the prebuilt addon does not load: ${probe.stderr.trim().split('\n')[0]}`);
  return probe.stdout.trim();
}

if (!force && isUpToDate(target, INPUTS.map((p) => join(root, p)))) {
  process.stdout.write(`prebuild: ${relative(root, target)} is up to date (ISAs usable here: ${loadCheck(target)})\n`);
  process.exit(0);
}

const cmakeJs = join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
if (!existsSync(cmakeJs)) die('cmake-js is not installed (it is a devDependency: run npm install first)');
rmSync(buildDir, { recursive: true, force: true });
run(process.execPath, [
  cmakeJs,
  'compile',
  '--directory', 'native',
  '--out', relative(root, buildDir),
  '--config', 'Release',
  '--CDDENSETRAIN_PORTABLE=ON',
  '--log-level', 'warn',
]);

const built = join(buildDir, 'Release', 'densetrain.node');
if (!existsSync(built)) die(`cmake-js succeeded but ${relative(root, built)} is missing`);
const dir = dirname(target);
mkdirSync(dir, { recursive: true });
// One binary per platform folder: an older one under another name would compete with it.
for (const old of readdirSync(dir)) rmSync(join(dir, old), { force: true });
copyFileSync(built, target);
if (process.platform !== 'win32' && process.platform !== 'darwin') {
  // Symbols are not needed to run; the tarball is smaller without them.
  const strip = spawnSync('strip', ['--strip-unneeded', target], { stdio: 'inherit' });
  if (strip.error || strip.status !== 0) process.stderr.write('prebuild: strip not available; shipping an unstripped binary\n');
}
const isas = loadCheck(target);
const kb = Math.round(statSync(target).size / 1024);
process.stdout.write(`prebuild: wrote ${relative(root, target)} (${kb} KiB; ISAs usable here: ${isas})\n`);
