/**
 * Which native addon file to load, and, when there is none, a reason a user of the package can
 * act on. The search follows node-gyp-build's rules (it is the loader used to find the file):
 * an addon compiled in this package (build/Release, a developer clone or an install-time
 * compile) first, then the prebuilt binary matching this platform, architecture and C library
 * in prebuilds/<platform>-<arch>/ (shipped in the npm tarball). node-gyp-build honours
 * npm_config_platform / npm_config_arch, which the package checks use to simulate a platform
 * without a prebuild.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { packageRoot } from './paths.js';
import { firstLine } from '../first-line.js';

interface NodeGypBuild {
  path(dir: string): string;
}

/** What native.ts should load, or why nothing can be. */
export type AddonLocation =
  | { ok: true; path: string; source: 'DENSETRAIN_NATIVE_PATH' | 'prebuilt' | 'compiled' }
  | { ok: false; reason: string };

/** The platform node-gyp-build matches prebuilds against ("linux-x64"). */
export function loaderPlatform(): string {
  const env = process.env;
  return `${env['npm_config_platform'] || process.platform}-${env['npm_config_arch'] || process.arch}`;
}

/** The log scripts/install-native.mjs writes; its first line says how the last install-time build ended. */
function nativeBuildLogPath(): string {
  return join(packageRoot(), 'native-build.log');
}

/** The first line of native-build.log, or null when the install script never ran. */
function buildLogHead(): string | null {
  try {
    return firstLine(readFileSync(nativeBuildLogPath(), 'utf8'));
  } catch {
    return null;
  }
}

/** How to get native speed, in the words of someone who installed the package. */
export const NATIVE_REMEDY =
  'for native speed install a C++ compiler (e.g. apt install g++ make python3) and run "npm rebuild densetrain"';

/** Why no addon was found: what was looked for, what the install did, what to do. */
function explainMissing(): string {
  const platform = loaderPlatform();
  const head = buildLogHead();
  const failed = head === null ? null : /^densetrain native build failed: (.*)$/.exec(head)?.[1];
  if (failed !== undefined && failed !== null) {
    return `no prebuilt native addon for ${platform}, and compiling one at install failed (${failed}); ${NATIVE_REMEDY}`;
  }
  if (head === null) {
    return `no prebuilt native addon for ${platform}, and none was compiled at install (the install script did not run); ${NATIVE_REMEDY}`;
  }
  return `no native addon for ${platform} (the install said: ${head}); run "npm rebuild densetrain"`;
}

/** Where the addon is: DENSETRAIN_NATIVE_PATH if set, else node-gyp-build's answer for this package. */
export function locateNativeAddon(): AddonLocation {
  const fromEnv = process.env['DENSETRAIN_NATIVE_PATH'];
  if (fromEnv !== undefined && fromEnv !== '') {
    const path = resolve(fromEnv);
    if (!existsSync(path)) return { ok: false, reason: `native addon not found: DENSETRAIN_NATIVE_PATH=${fromEnv} does not exist` };
    return { ok: true, path, source: 'DENSETRAIN_NATIVE_PATH' };
  }
  const root = packageRoot();
  let path: string;
  try {
    const nodeGypBuild = createRequire(import.meta.url)('node-gyp-build') as NodeGypBuild;
    path = nodeGypBuild.path(root);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (/^No native build was found/.test(message)) return { ok: false, reason: explainMissing() };
    return { ok: false, reason: `native addon loader failed: ${firstLine(message)}` };
  }
  const prebuilt = resolve(path).startsWith(join(root, 'prebuilds'));
  return { ok: true, path, source: prebuilt ? 'prebuilt' : 'compiled' };
}
