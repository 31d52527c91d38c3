/**
 * Keeping the dashboard inside its folder: a requested path is served only if it resolves, with
 * every symbolic link followed, to a file under the root. '..' segments, absolute paths, NUL
 * bytes and links that point outside all resolve to null.
 */
import { realpath, stat } from 'node:fs/promises';
import { isAbsolute, resolve, sep } from 'node:path';

function inside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

/**
 * The real path of `relativePath` (already URL-decoded, '/'-separated) under `root` (a real path),
 * or null when it is not an existing entry inside the root.
 */
export async function resolveInside(root: string, relativePath: string): Promise<string | null> {
  if (relativePath.includes('\0') || isAbsolute(relativePath) || /^[a-zA-Z]:/.test(relativePath)) return null;
  const segments = relativePath.split(/[/\\]/);
  if (segments.some((s) => s === '..')) return null;
  const candidate = resolve(root, ...segments.filter((s) => s !== '' && s !== '.'));
  if (!inside(root, candidate)) return null;
  let real: string;
  try {
    real = await realpath(candidate);
  } catch {
    return null;
  }
  return inside(root, real) ? real : null;
}

/** Like resolveInside, for a regular file. */
export async function resolveFileInside(root: string, relativePath: string): Promise<string | null> {
  const real = await resolveInside(root, relativePath);
  if (real === null) return null;
  try {
    return (await stat(real)).isFile() ? real : null;
  } catch {
    return null;
  }
}
