/**
 * Wrong usage: every path ends with exit code 2 and one line on stderr that names the option
 * (as typed on the command line, or the config file and key), no stack trace, and no run
 * folder left behind. The main paths run the real command as a child process; the long tail
 * runs main() in-process (same code, without paying a Node start-up per case).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import type { Io } from '../src/cli/io.js';
import { ensureBuilt, runCli, writeTinyDataset, type TinyDataset } from './helpers/cli.js';

let tmp: string;
let data: TinyDataset;

beforeAll(() => {
  ensureBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'densetrain-cli-usage-'));
  data = writeTinyDataset(join(tmp, 'tiny'));
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

function expectUsage(result: Outcome, ...fragments: string[]): void {
  const lines = result.stderr.trim().split('\n');
  expect(result.code, `stderr: ${result.stderr}`).toBe(2);
  expect(lines, `stderr should be one line: ${result.stderr}`).toHaveLength(1);
  expect(lines[0]).toMatch(/^densetrain: /);
  for (const f of fragments) expect(lines[0]).toContain(f);
  expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
}

/** main() in this process, its output captured. */
async function runInProcess(args: string[]): Promise<Outcome> {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (l = '') => void out.push(l), err: (l = '') => void err.push(l), tty: false, stderr: process.stderr };
  const code = await main(args, io);
  return { code, stdout: out.map((l) => `${l}\n`).join(''), stderr: err.map((l) => `${l}\n`).join('') };
}

type Runner = (args: string[]) => Promise<Outcome>;
const spawned: Runner = (args) => runCli(args, { cwd: tmp });

/** train on the tiny data into a fresh folder, which must not exist afterwards. */
async function trainFails(run: Runner, args: string[], ...fragments: string[]): Promise<void> {
  const out = join(tmp, `run-${Math.random().toString(36).slice(2)}`);
  const result = await run(['train', '--data', data.dir, '--layers', '64,16,10', '--epochs', '1', '--out', out, ...args]);
  expectUsage(result, ...fragments);
  expect(existsSync(out), 'a failed validation must not create the run folder').toBe(false);
}

function configFile(name: string, contents: string): string {
  const path = join(tmp, name);
  writeFileSync(path, contents);
  return path;
}

describe.concurrent('densetrain train (child process): wrong options exit 2 naming the option', () => {
  it('unknown activation', () => trainFails(spawned, ['--activation', 'swish'], '--activation', '"swish"', 'relu'));
  it('lr <= 0', () => trainFails(spawned, ['--lr', '-1'], '--lr must be > 0, got -1'));
  it('unknown flag, with a suggestion', () => trainFails(spawned, ['--lrate', '0.1'], "unknown option '--lrate'", '--lr'));
  it('first layer does not match the pixels', () =>
    trainFails(spawned, ['--layers', '784,16,10'], '--layers starts with 784 inputs but the data has 64 pixels per image (8x8)'));
  it('batch size larger than the training split', () =>
    // 200 images, val-split 0.1: 180 left for training.
    trainFails(spawned, ['--batch-size', '181', '--val-split', '0.1'], '--batch-size 181 is larger than the training split (180 images)'));
  it('unknown config key', () =>
    trainFails(spawned, ['--config', configFile('unknown.json', '{"lrate": 0.1}')], 'unknown.json: unknown key "lrate"'));
  it('wrong type in the config file', () =>
    trainFails(spawned, ['--config', configFile('type.json', '{"epochs": "3"}')], 'type.json: "epochs" must be an integer, got "3"'));
});

describe('densetrain train (in-process main): more wrong options', () => {
  const fails = (args: string[], ...fragments: string[]) => trainFails(runInProcess, args, ...fragments);
  it('an unknown option names the closest known one, by spelling or by what its help calls it', async () => {
    await fails(['--learning-rate', '0.1'], "unknown option '--learning-rate' (did you mean --lr?)");
    await fails(['--learning_rate', '0.1'], '(did you mean --lr?)');
    await fails(['--random-seed', '3'], '(did you mean --seed?)');
    await fails(['--batch', '8'], '(did you mean --batch-size?)');
    // commander's own suggestion, in the same words as ours.
    await fails(['--nestrov'], '(did you mean --nesterov?)');
    const far = await runInProcess(['train', '--data', data.dir, '--colour', 'red']);
    expectUsage(far, "unknown option '--colour'");
    expect(far.stderr).not.toMatch(/did you mean/i);
    // Other commands too: eval's options are its own.
    expectUsage(await runInProcess(['eval', '--model', 'm', '--data', data.dir, '--prediction-file', 'p.json']), '(did you mean --predictions?)');
  });
  it('lr = 0, not a number', async () => {
    await fails(['--lr', '0'], '--lr must be > 0, got 0');
    await fails(['--lr', 'fast'], '--lr must be a number, got "fast"');
  });
  it('ranges and integers', async () => {
    await fails(['--momentum', '1'], '--momentum must be in [0, 1), got 1');
    await fails(['--val-split', '1'], '--val-split must be in [0, 1), got 1');
    await fails(['--epochs', '1.5'], '--epochs must be an integer, got 1.5');
    await fails(['--batch-size', '0'], '--batch-size must be an integer >= 1, got 0');
    await fails(['--threads', '0'], '--threads must be an integer >= 1, got 0');
    await fails(['--l2', '-1'], '--l2 must be >= 0, got -1');
    await fails(['--beta2', '1'], '--beta2 must be in [0, 1), got 1');
    await fails(['--eps', '0'], '--eps must be > 0, got 0');
    await fails(['--optimizer', 'rmsprop'], '--optimizer must be one of sgd, adam; got "rmsprop"');
    await fails(['--backend', 'gpu'], '--backend must be one of auto, native, wasm, reference; got "gpu"');
  });
  it('malformed or too short layers', async () => {
    await fails(['--layers', '64,,10'], '--layers', '"64,,10"');
    await fails(['--layers', '64'], '--layers needs at least 2 sizes');
  });
  it('missing option argument', () => fails(['--seed'], "'--seed <n>' argument missing"));
  it('last layer does not match the classes', () => fails(['--layers', '64,16,3'], '--layers ends with 3 outputs but the data has 10 classes'));
  it('missing data', () => fails(['--data', join(tmp, 'nowhere')], 'nowhere'));
  it('config: invalid value, not JSON, missing file', async () => {
    await fails(['--config', configFile('lr.json', '{"lr": -1}')], 'lr.json: "lr" must be > 0, got -1');
    await fails(['--config', configFile('broken.json', '{"lr": 0.1,')], 'broken.json: not valid JSON');
    await fails(['--config', configFile('list.json', '[1]')], 'list.json: must be a JSON object');
    await fails(['--config', join(tmp, 'absent.json')], '--config', 'absent.json', 'no such file');
  });
  it('a data check names the config key when the value came from the file', () =>
    fails(['--config', configFile('batch.json', '{"batchSize": 500}')], 'batch.json: "batchSize" 500 is larger than the training split'));
  it('a flag overrides the file: the file value is not used', () =>
    // The file asks for 784 inputs (wrong for this data), the flag for 64: the error is about the flag's batch size.
    fails(['--config', configFile('layers.json', '{"layers": [784, 10]}'), '--layers', '64,10', '--batch-size', '999'], '--batch-size 999'));
  it('a thread count the backend refuses names --threads', () =>
    fails(['--backend', 'reference', '--threads', '2'], '--threads 2: threads must be'));
  it('DENSETRAIN_BACKEND applies when --backend is not given, and is checked', async () => {
    const saved = process.env['DENSETRAIN_BACKEND'];
    process.env['DENSETRAIN_BACKEND'] = 'gpu';
    try {
      await fails([], 'DENSETRAIN_BACKEND must be one of');
    } finally {
      if (saved === undefined) delete process.env['DENSETRAIN_BACKEND'];
      else process.env['DENSETRAIN_BACKEND'] = saved;
    }
  });
  it('--out that is a file', async () => {
    const file = configFile('not-a-dir', 'x');
    const result = await runInProcess(['train', '--data', data.dir, '--layers', '64,10', '--out', file]);
    expectUsage(result, '--out', 'is a file');
  });
});

describe('other commands (in-process main)', () => {
  it('unknown command', async () => expectUsage(await runInProcess(['trian']), "unknown command 'trian'"));
  it('eval without --model', async () => expectUsage(await runInProcess(['eval', '--data', 'x']), "'--model <file>'"));
  it('eval with a missing model file', async () =>
    expectUsage(await runInProcess(['eval', '--model', join(tmp, 'none.safetensors'), '--data', data.dir]), 'none.safetensors'));
  it('eval with a bad backend', async () =>
    expectUsage(await runInProcess(['eval', '--model', 'm', '--data', data.dir, '--backend', 'gpu']), '--backend must be one of'));
  it('data download of an unknown dataset', async () =>
    expectUsage(await runInProcess(['data', 'download', 'cifar']), 'unknown dataset "cifar"'));
  it('data download without a name', async () =>
    expectUsage(await runInProcess(['data', 'download']), "missing required argument 'name'"));
  it('--verbose adds the stack', async () => {
    const result = await runInProcess(['train', '--data', join(tmp, 'nowhere'), '--verbose']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/\n\s+at /);
  });
});

describe('runtime failures (in-process main)', () => {
  it('exit 1 with one line and the --verbose hint, for an error that is not the user\'s options', async () => {
    // The data and options are fine; the run folder cannot be created (a name longer than any file system allows).
    const result = await runInProcess(['train', '--data', data.dir, '--layers', '64,10', '--epochs', '1', '--out', join(tmp, 'x'.repeat(300))]);
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^densetrain: .*ENAMETOOLONG/);
    expect(lines[1]).toBe('run with --verbose for the stack');
  });
});

describe('no command, help (child process)', () => {
  it('no command prints help and exits 2; --help exits 0', async () => {
    const [none, help] = await Promise.all([runCli([]), runCli(['train', '--help'])]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('Usage: densetrain');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--batch-size <n>');
    expect(help.stdout).toContain('--config <file>');
    // Switches on by default say so, and show how to turn them off.
    const flat = help.stdout.replace(/\n\s+/g, ' ');
    expect(flat).toMatch(/--nesterov +Nesterov momentum \(SGD\) \(default: on\)/);
    expect(flat).toMatch(/--no-nesterov +turn --nesterov off/);
    expect(flat).toMatch(/--standardize +standardise pixels .*\(default: on\)/);
    expect(flat).toMatch(/--no-standardize +turn --standardize off/);
    expect(flat).toMatch(/--lr <x> +learning rate \(> 0\) \(default: 0\.05\)/);
  });
});
