/**
 * Reliability, round two: the files and environment densetrain is given.
 * - Special files (a FIFO, /dev/zero) given as --data, --config, --resume, eval --model, or as the
 *   model inside a run folder, end within seconds with exit 2 and one line naming the path: each
 *   path is opened without blocking, checked to be a regular file and read with a size bound.
 * - A config file nested 100,000 levels deep is refused in one line (no stack overflow); one
 *   with a UTF-8 byte-order mark is read.
 * - DENSETRAIN_THREADS and DENSETRAIN_ISA with a bad value are refused with exit 2 and a line
 *   naming the variable, as --threads 0 is (they used to drop silently to wasm).
 * - Outputs never clobber inputs: eval --predictions naming the model (or a data file) is
 *   refused; an unwritable --predictions or --out (/proc/x, a missing folder, '') is refused
 *   before any work, naming the option.
 * - Small ones: error lines hold no raw control characters (a UTF-16 config); a full disk names
 *   the file being written (/dev/full, and a 256 KB tmpfs when mounting is allowed); `bench
 *   bogus` is one `densetrain:` line; a data set with 200 classes of 3 images does not write a
 *   55 MB report (the per-class sections are capped, and the report says so).
 * The corpus is built by the test in a temp folder.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorLine } from '../src/cli/errors.js';
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
    // --quiet: the backend is in the summary table.
    expect(result.stdout).toMatch(/^│ backend +│ native \(\w+, 1 thread\)/m);
  });
});

describe.concurrent('outputs never clobber inputs, and are checked before the work', () => {
  let run: string;
  beforeAll(async () => {
    run = join(root, 'eval-run');
    const result = await runCli(trainArgs(run), { cwd: root, timeoutMs: 60_000, env: { DENSETRAIN_BACKEND: 'reference' } });
    expect(result.code, result.stderr).toBe(0);
  });
  const model = () => join(run, 'model.safetensors');

  it.each([
    ['the model file', () => model(), () => model(), /is the --model .*writing it would destroy an input/],
    ['the model file through the run folder', () => run, () => model(), /is a file of the --model .*writing it would destroy an input/],
    ['a data file', () => model(), () => join(data.dir, 'train.csv'), /is a file of the --data .*writing it would destroy an input/],
    ['a folder that does not exist', () => model(), () => join(root, 'nowhere', 'p.json'), /the folder .*nowhere does not exist/],
    ['a folder', () => model(), () => root, /is a folder; give a file name/],
    ['/proc', () => model(), () => '/proc/p.json', /cannot write in \/proc/],
    ['empty', () => model(), () => '', /--predictions must not be empty/],
  ])('eval --predictions %s: refused, the input untouched', async (_name, modelArg, predictions, problem) => {
    const target = predictions();
    const before = target !== '' && existsSync(target) && statSync(target).isFile() ? readFileSync(target) : null;
    const result = await runCli(['eval', '--model', modelArg(), '--data', data.dir, '--predictions', target], { cwd: root, timeoutMs: 30_000 });
    expectOneLine(result, '--predictions', problem);
    expect(result.stdout).not.toMatch(/backend:/); // refused before any work
    if (before) expect(readFileSync(target).equals(before)).toBe(true);
  });

  it.each([
    ['/proc/x', /--out \/proc\/x: cannot write in \/proc/],
    ['', /--out must not be empty/],
  ])('train --out %j: refused at once', async (out, problem) => {
    const result = await runCli(['train', '--data', data.dir, '--epochs', '1', '--out', out], { cwd: root, timeoutMs: 30_000 });
    expectOneLine(result, '--out', problem);
  });
});

describe.concurrent('small ones', () => {
  it('a UTF-16 config: one line, no raw control characters', async () => {
    const file = join(root, 'utf16.json');
    writeFileSync(file, Buffer.from('\ufeff{"lr": 0.1}', 'utf16le'));
    const result = await runCli([...trainArgs(join(root, 'out-utf16')), '--config', file], { cwd: root, timeoutMs: 30_000 });
    expectOneLine(result, file, /is UTF-16 text; save it as UTF-8/);
    // eslint-disable-next-line no-control-regex
    expect(result.stderr.replace(/\n$/, '')).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);
    const noBom = join(root, 'utf16-nobom.json');
    writeFileSync(noBom, Buffer.from('{"lr": 0.1}', 'utf16le'));
    const bare = await runCli([...trainArgs(join(root, 'out-utf16b')), '--config', noBom], { cwd: root, timeoutMs: 30_000 });
    expectOneLine(bare, noBom, /not valid JSON/);
    // eslint-disable-next-line no-control-regex
    expect(bare.stderr.replace(/\n$/, '')).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);
    // Any message: control characters become visible escapes.
    expect(errorLine(new Error('bad \u0000 byte\u001b[31m here\tthere\r'))).toBe('bad \\u0000 byte\\u001b[31m here\\u0009there');
  });

  it('a full disk names the file being written: eval --predictions /dev/full', async () => {
    const run = join(root, 'full-run');
    expect((await runCli(trainArgs(run), { cwd: root, timeoutMs: 60_000, env: { DENSETRAIN_BACKEND: 'reference' } })).code).toBe(0);
    const result = await runCli(['eval', '--model', run, '--data', data.dir, '--predictions', '/dev/full'], { cwd: root, timeoutMs: 30_000 });
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe('densetrain: /dev/full: cannot write (no space left on the device)');
  });

  const canMount = process.getuid?.() === 0 && spawnSync('mount', ['--version']).status === 0;
  it.runIf(canMount)('a full disk during training names the checkpoint file', async () => {
    const mnt = join(root, 'small-disk');
    mkdirSync(mnt);
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt]).status !== 0) return; // not allowed here
    try {
      const out = join(mnt, 'run');
      const result = await runCli(['train', '--data', data.dir, '--layers', '64,1024,10', '--epochs', '2', '--out', out, '--quiet'], {
        cwd: root,
        timeoutMs: 60_000,
        env: { DENSETRAIN_BACKEND: 'reference' },
      });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`densetrain: ${join(out, 'checkpoint.safetensors')}: cannot write (no space left on the device)`);
      expect(result.stderr).not.toMatch(/\.tmp/);
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  it('bench bogus: one densetrain: line, exit 2', async () => {
    const result = await runCli(['bench', 'bogus'], { cwd: root, timeoutMs: 30_000 });
    expectOneLine(result, 'bench', /^densetrain: bench: unknown suite "bogus" \(kernels, train or all\); usage: densetrain bench/);
  });

  it('200 classes of 3 images: the report stays small and says why sections are missing', async () => {
    const lines = [`label,${Array.from({ length: 16 }, (_, i) => `p${i}`).join(',')}`];
    for (let i = 0; i < 600; i++) lines.push([i % 200, ...Array.from({ length: 16 }, (_, p) => (i * 31 + p * 17) % 256)].join(','));
    const file = join(root, 'many-classes.csv');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const out = join(root, 'out-many');
    const result = await runCli(['train', '--data', file, '--layers', '16,32,200', '--epochs', '1', '--batch-size', '8', '--out', out, '--quiet'], {
      cwd: root,
      timeoutMs: 90_000,
      env: { DENSETRAIN_BACKEND: 'reference' },
    });
    expect(result.code, result.stderr).toBe(0);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html.length).toBeLessThan(1_000_000); // 55.8 MB before the cap
    expect(html).toContain('This data set has 200 classes: the confusion matrices (200 x 200 cells each) are left out of the report');
    expect(existsSync(join(out, 'charts', 'confusion-counts.svg'))).toBe(false);
  });
});
