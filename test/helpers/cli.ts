/**
 * Running the real `densetrain` command (node bin/densetrain.js) in tests, and a tiny dataset to
 * train it on.
 *
 * ensureBuilt() compiles with tsc only when dist/ is older than a source file (no lock: tsc
 * writes the same files whoever runs it).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const BIN = join(ROOT, 'bin', 'densetrain.js');
const ENTRY = join(ROOT, 'dist', 'src', 'cli', 'main.js');

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** Compiles src/ and bench/ to dist/ if dist is missing or older than any source file. */
export function ensureBuilt(): void {
  const fresh = () =>
    existsSync(ENTRY) && statSync(ENTRY).mtimeMs >= Math.max(newestSource(join(ROOT, 'src')), newestSource(join(ROOT, 'bench')));
  if (fresh()) {
    ensureClientBuilt();
    return;
  }
  try {
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], {
      cwd: ROOT,
      stdio: 'pipe',
    });
  } catch {
    // Type errors elsewhere in the tree still emit JavaScript; the CLI's own tests decide.
  }
  if (!existsSync(ENTRY)) throw new Error(`tsc did not produce ${ENTRY}`);
  ensureClientBuilt();
}

const CLIENT_SRC = join(ROOT, 'src', 'view', 'client');
const CLIENT_ENTRY = join(ROOT, 'dist', 'src', 'view', 'client', 'dashboard.js');

/** The dashboard's browser script has its own tsconfig (DOM types); compiled like the rest when stale. */
export function ensureClientBuilt(): void {
  if (existsSync(CLIENT_ENTRY) && statSync(CLIENT_ENTRY).mtimeMs >= newestSource(CLIENT_SRC)) return;
  execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(CLIENT_SRC, 'tsconfig.json')], { cwd: ROOT, stdio: 'pipe' });
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
}

function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  // No colour, no TTY progress: the output is plain text whatever runs the tests.
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...extra };
  for (const [k, v] of Object.entries(extra)) if (v === undefined) delete env[k];
  return env;
}

export function spawnCli(args: string[], options: CliOptions = {}): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? ROOT,
    env: childEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Collects a child's output until it exits. */
export function collect(child: ChildProcess, timeoutMs = 90_000): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`densetrain did not exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

/**
 * Sends `signal` to the child the first time its stderr so far matches `pattern` (the output is
 * accumulated, so a line split across chunks still matches). Returns a function telling whether
 * the signal was sent, for the test to assert after the child exits.
 */
export function signalWhenSeen(child: ChildProcess, pattern: RegExp, signal: NodeJS.Signals = 'SIGINT'): () => boolean {
  let sent = false;
  let seen = '';
  child.stderr!.on('data', (chunk: Buffer | string) => {
    seen += chunk.toString();
    if (!sent && pattern.test(seen)) {
      sent = true;
      child.kill(signal);
    }
  });
  return () => sent;
}

export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return collect(spawnCli(args, options), options.timeoutMs);
}

/** Deterministic pseudo-random numbers for the fixture (not the library's Rng: independent of it). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export interface TinyDataset {
  dir: string;
  side: number;
  classes: number;
  train: number;
  test: number;
}

/**
 * A learnable dataset of side x side images as train.csv + test.csv in `dir`: each class has a
 * fixed random template of bright pixels; every image is its template plus noise.
 */
export function writeTinyDataset(dir: string, options: { side?: number; classes?: number; train?: number; test?: number; seed?: number } = {}): TinyDataset {
  const side = options.side ?? 8;
  const classes = options.classes ?? 10;
  const train = options.train ?? 200;
  const test = options.test ?? 60;
  const rand = lcg(options.seed ?? 7);
  const pixels = side * side;
  const templates = Array.from({ length: classes }, () => Array.from({ length: pixels }, () => (rand() < 0.3 ? 1 : 0)));
  const rows = (count: number) => {
    const lines = [`label,${Array.from({ length: pixels }, (_, i) => `p${i}`).join(',')}`];
    for (let i = 0; i < count; i++) {
      const label = i % classes;
      const t = templates[label]!;
      const values = t.map((on) => Math.max(0, Math.min(255, Math.round((on ? 200 : 30) + (rand() - 0.5) * 80))));
      lines.push(`${label},${values.join(',')}`);
    }
    return `${lines.join('\n')}\n`;
  };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'train.csv'), rows(train));
  writeFileSync(join(dir, 'test.csv'), rows(test));
  return { dir, side, classes, train, test };
}
