/**
 * Reliability, round two: the files and environment densetrain is given.
 * - Special files (a FIFO, /dev/zero) given as --data, --config, --resume, eval --model, or as the
 *   model inside a run folder, end within seconds with exit 2 and one line naming the path: each
 *   path is opened without blocking, checked to be a regular file and read with a size bound.
 * - A config file nested 100,000 levels deep is refused in one line (no stack overflow); one
 *   with a UTF-8 byte-order mark is read.
 * - DENSETRAIN_THREADS and DENSETRAIN_ISA with a bad value are refused with exit 2 and a line
 *   naming the variable, as --threads 0 is (they used to drop silently to wasm).
 * The corpus is built by the test in a temp folder.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tryLoadBackend } from '../src/kernels/index.js';
import { ensureBuilt, runCli, writeTinyDataset, type TinyDataset } from './helpers/cli.js';
import { tempDir } from './helpers/data-fixtures.js';
import { expectOneLine } from './helpers/one-line.js';

let root: string;
let cleanup: () => void;
let data: TinyDataset;
let fifo: string;

beforeAll(() => {
  ensureBuilt();
  ({ dir: root, cleanup } = tempDir('densetrain-rel-files-'));
  data = writeTinyDataset(join(root, 'tiny'));
  fifo = join(root, 'fifo');
  execFileSync('mkfifo', [fifo]);
  // A run folder whose model and checkpoint are FIFOs.
  mkdirSync(join(root, 'fifo-run'));
  execFileSync('mkfifo', [join(root, 'fifo-run', 'model.safetensors'), join(root, 'fifo-run', 'checkpoint.safetensors')]);
});
afterAll(() => cleanup?.());


const trainArgs = (out: string): string[] => ['train', '--data', data.dir, '--layers', '64,8,10', '--epochs', '1', '--batch-size', '8', '--out', out, '--quiet'];

describe.concurrent('special files never hang or eat memory: exit 2 within seconds, one line naming the path', () => {
  const FIFO = /named pipe \(FIFO\), expected a regular file/;
  it.each([
    ['eval --model FIFO', () => ['eval', '--model', fifo, '--data', data.dir], () => fifo, FIFO],
    ['eval --model /dev/zero', () => ['eval', '--model', '/dev/zero', '--data', data.dir], () => '/dev/zero', /character device, expected a regular file/],
    ['eval --model of a run folder holding a FIFO', () => ['eval', '--model', join(root, 'fifo-run'), '--data', data.dir], () => join(root, 'fifo-run', 'model.safetensors'), FIFO],
    ['train --config FIFO', () => [...trainArgs(join(root, 'out-config')), '--config', fifo], () => `--config ${fifo}`, FIFO],
    ['train --resume FIFO', () => ['train', '--resume', fifo], () => fifo, FIFO],
    ['train --resume of a run folder holding a FIFO', () => ['train', '--resume', join(root, 'fifo-run')], () => join(root, 'fifo-run', 'checkpoint.safetensors'), FIFO],
    ['train --data FIFO', () => ['train', '--data', fifo, '--epochs', '1', '--out', join(root, 'out-data')], () => fifo, FIFO],
    ['train --data /dev/zero', () => ['train', '--data', '/dev/zero', '--epochs', '1', '--out', join(root, 'out-zero')], () => '/dev/zero', /character device/],
  ] as const)('%s', async (_name, args, names, problem) => {
    const result = await runCli(args(), { cwd: root, timeoutMs: 30_000, env: { DENSETRAIN_BACKEND: 'reference' } });
    expectOneLine(result, names(), problem);
  });

  it('a config of 100,000 nested arrays is refused in one line (no stack overflow)', async () => {
    const file = join(root, 'deep.json');
    writeFileSync(file, `${'['.repeat(100_000)}${']'.repeat(100_000)}`);
    const out = join(root, 'out-deep');
    const result = await runCli([...trainArgs(out), '--config', file], { cwd: root, timeoutMs: 30_000 });
    expectOneLine(result, file, /nested more than \d+ levels/);
    expect(existsSync(out)).toBe(false);
  });

  it('a config file larger than any config is refused by size, before it is read', async () => {
    const file = join(root, 'huge.json');
    writeFileSync(file, `{"lr": 0.1${' '.repeat(2 << 20)}}`);
    const result = await runCli([...trainArgs(join(root, 'out-huge')), '--config', file], { cwd: root, timeoutMs: 30_000 });
    expectOneLine(result, file, /too large for a config file: \d+ bytes, the limit is 1048576/);
  });

  it('a config file with a UTF-8 byte-order mark is read', async () => {
    const file = join(root, 'bom.json');
    writeFileSync(file, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"epochs": 1, "lr": 0.07}')]));
    const out = join(root, 'out-bom');
    const result = await runCli([...trainArgs(out), '--config', file, '--verbose'], { cwd: root, timeoutMs: 60_000, env: { DENSETRAIN_BACKEND: 'reference' } });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/"lr":0\.07/);
  });
});

describe.concurrent('environment variables are options too', () => {
  const nativeLoads = tryLoadBackend('native').ok;
  it.each([
    ['DENSETRAIN_THREADS', 'abc'],
    ['DENSETRAIN_THREADS', '0'],
    ['DENSETRAIN_THREADS', '-3'],
    ['DENSETRAIN_THREADS', '1000'],
    ['DENSETRAIN_THREADS', '1.5'],
    ['DENSETRAIN_ISA', 'bogus'],
  ])('%s=%s: exit 2 naming the variable, nothing trained', async (name, value) => {
    const out = join(root, `out-env-${name}-${value}`);
    const result = await runCli(trainArgs(out), { cwd: root, timeoutMs: 30_000, env: { [name]: value, DENSETRAIN_BACKEND: undefined } });
    expectOneLine(result, name, /must be/);
    expect(result.stderr).toContain(JSON.stringify(value));
    expect(existsSync(out)).toBe(false);
  });

  it('the same with --backend native, and with eval', async () => {
    const out = join(root, 'out-env-native');
    const train = await runCli([...trainArgs(out), '--backend', 'native'], { cwd: root, timeoutMs: 30_000, env: { DENSETRAIN_THREADS: 'abc' } });
    expectOneLine(train, 'DENSETRAIN_THREADS', /must be an integer from 1 to 256/);
    const evaluate = await runCli(['eval', '--model', fifo, '--data', data.dir], { cwd: root, timeoutMs: 30_000, env: { DENSETRAIN_ISA: 'bogus' } });
    expectOneLine(evaluate, 'DENSETRAIN_ISA', /must be one of auto, avx512, avx2, generic/);
  });

  it.runIf(nativeLoads)('a good DENSETRAIN_THREADS still reaches the native backend', async () => {
    const out = join(root, 'out-env-good');
    const result = await runCli(trainArgs(out), { cwd: root, timeoutMs: 60_000, env: { DENSETRAIN_THREADS: '1', DENSETRAIN_BACKEND: undefined } });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^backend: native \(\w+, 1 thread\)/m);
  });
});
