// Make-style freshness check for the install-time builds: an output is up to date when it exists
// and is newer than every input file (directories are walked). Lets a repeated `npm install`,
// or npx linking the package, skip a rebuild that would change nothing.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function newestMtime(path) {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    return Infinity; // a missing input cannot be proven older than the output
  }
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const name of readdirSync(path)) {
    if (name === 'build' || name === 'node_modules') continue;
    newest = Math.max(newest, newestMtime(join(path, name)));
  }
  return newest;
}

/** True if `output` exists and is newer than every file under `inputs`. */
export function isUpToDate(output, inputs) {
  let outputTime;
  try {
    outputTime = statSync(output).mtimeMs;
  } catch {
    return false;
  }
  return inputs.every((input) => newestMtime(input) < outputTime);
}
