/**
 * Where the package's own files are. The answer depends only on this module's own location
 * (src/kernels/ in a clone run through vitest, dist/src/kernels/ in the installed package),
 * never on the working directory or on folders the npm tarball does not ship.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_NAME = 'densetrain';

let cachedRoot: string | undefined;

function isOurManifest(file: string): boolean {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown }).name === PACKAGE_NAME;
  } catch {
    return false;
  }
}

/**
 * The directory holding densetrain's package.json: the nearest one above this module whose
 * name is "densetrain". The nearest package.json above a module is its own package's (npm
 * puts no package.json between a package root and its files), so a user's project that
 * happens to be laid out like ours is never mistaken for it.
 */
export function packageRoot(): string {
  if (cachedRoot !== undefined) return cachedRoot;
  const here = fileURLToPath(import.meta.url);
  for (let dir = dirname(here); ; ) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && isOurManifest(manifest)) {
      cachedRoot = dir;
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`densetrain: no package.json named "${PACKAGE_NAME}" above ${here}; the package is damaged, reinstall it`);
    dir = parent;
  }
}

/**
 * A compiled entry script (a worker's) that lives beside the module at `moduleUrl` in dist/:
 * that sibling when the module runs from dist/, else dist/<distPath> (the module runs from src/
 * under a test runner, which cannot start a worker from TypeScript).
 */
export function compiledEntry(moduleUrl: string, distPath: string): string {
  const here = fileURLToPath(moduleUrl);
  const sibling = join(dirname(here), distPath.split('/').pop()!);
  if (here.endsWith('.js') && existsSync(sibling)) return sibling;
  return join(packageRoot(), 'dist', ...distPath.split('/'));
}
