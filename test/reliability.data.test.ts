/**
 * Reliability, hostile data end to end: every corrupt-dataset case of the data layer's corpus,
 * run through the real `densetrain train` command, ends with exit code 2, ONE line on stderr that
 * names the file and the problem, no stack trace (unless --verbose), and no run folder that could
 * pass for a finished run (the folder is absent, or marked INCOMPLETE without model or metrics).
 *
 * Also the option/config checks that test/schema.test.ts and test/cli.usage.test.ts do not
 * already cover (negative sizes, a negative layer size, a zero step size).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import type { Io } from '../src/cli/io.js';
import { ensureBuilt, runCli } from './helpers/cli.js';
import { csvText, gz, IDX_NAMES, idxImages, idxLabels, syntheticSet, tempDir, writeIdxDataset, type RawSet } from './helpers/data-fixtures.js';

let root: string;
let cleanup: () => void;

beforeAll(() => {
  ensureBuilt();
  ({ dir: root, cleanup } = tempDir('densetrain-rel-data-'));
});
afterAll(() => cleanup?.());

const train: RawSet = syntheticSet(60, 4, 4, 10, 1);
const test: RawSet = syntheticSet(20, 4, 4, 10, 2);

interface Case {
  name: string;
  /** Writes the hostile dataset under `dir`; returns the --data argument and the file the message must name. */
  make: (dir: string) => { data: string; names: string; env?: Record<string, string> };
  /** What the one line must say about the problem. */
  problem: RegExp;
}

/** A directory with the four valid IDX files, then `role` replaced by `bytes` (under `name`, default the standard name). */
function idxDirWith(dir: string, role: keyof typeof IDX_NAMES, bytes: Uint8Array | null, opts: { gzip?: boolean } = {}): string {
  const paths = writeIdxDataset(dir, train, test, { gzip: opts.gzip ?? false });
  if (bytes !== null) writeFileSync(paths[role], bytes);
  return paths[role];
}

const CASES: Case[] = [
  {
    name: 'truncated IDX image file',
    make: (dir) => {
      const full = idxImages(train);
      const file = idxDirWith(dir, 'trainImages', full.subarray(0, full.length - 37));
      return { data: dir, names: file };
    },
    problem: /truncated/,
  },
  {
    name: 'wrong magic (a label file where the images belong)',
    make: (dir) => ({ data: dir, names: idxDirWith(dir, 'trainImages', idxLabels(train.labels)) }),
    problem: /magic|not an IDX image/i,
  },
  {
    name: 'header claiming 10^9 images',
    make: (dir) => ({ data: dir, names: idxDirWith(dir, 'trainImages', idxImages(train, { count: 1e9, height: 28, width: 28 })) }),
    problem: /1000000000 images/,
  },
  {
    name: 'image and label counts differ',
    make: (dir) => ({ data: dir, names: idxDirWith(dir, 'trainLabels', idxLabels(train.labels.subarray(0, train.count - 1))) }),
    problem: /counts must be equal/,
  },
  {
    name: 'label out of range for a named 10-class dataset',
    make: (dir) => {
      const bad = syntheticSet(30, 4, 4, 12, 5); // labels 0..11
      const paths = writeIdxDataset(join(dir, 'mnist'), bad, test);
      return { data: 'mnist', names: paths.trainLabels, env: { DENSETRAIN_DATA: dir } };
    },
    problem: /label 1[01] at index \d+ is out of range: 10 classes/,
  },
  {
    name: '.gz file that is not gzip (an HTML error page)',
    make: (dir) => ({
      data: dir,
      names: idxDirWith(dir, 'trainImages', Buffer.from('<html><body>404 Not Found</body></html>\n'), { gzip: true }),
    }),
    problem: /gzip|not an IDX|magic/i,
  },
  {
    name: '.gz file cut short',
    make: (dir) => {
      const whole = gz(idxImages(train));
      return { data: dir, names: idxDirWith(dir, 'trainImages', whole.subarray(0, Math.floor(whole.length / 2)), { gzip: true }) };
    },
    problem: /truncated|cut short|corrupt|unexpected end/i,
  },
  {
    name: 'empty IDX file',
    make: (dir) => ({ data: dir, names: idxDirWith(dir, 'testLabels', new Uint8Array(0)) }),
    problem: /empty/,
  },
  {
    name: 'directory missing one of the four IDX files',
    make: (dir) => {
      writeIdxDataset(dir, train, test, { omit: 'testImages' });
      return { data: dir, names: IDX_NAMES.testImages };
    },
    problem: /missing|no dataset files/,
  },
  {
    name: 'CSV with a non-numeric field',
    make: (dir) => {
      mkdirSync(dir, { recursive: true });
      const lines = csvText(train).split('\n');
      lines[7] = lines[7]!.replace(/,(\d+),/, ',abc,');
      writeFileSync(join(dir, 'train.csv'), lines.join('\n'));
      writeFileSync(join(dir, 'test.csv'), csvText(test));
      return { data: dir, names: join(dir, 'train.csv') };
    },
    problem: /line 8, column \d+: non-numeric field/,
  },
  {
    name: 'CSV with ragged rows',
    make: (dir) => {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'train.csv'), csvText(train));
      const lines = csvText(test).split('\n');
      lines[3] = lines[3]!.replace(/,\d+$/, '');
      writeFileSync(join(dir, 'test.csv'), lines.join('\n'));
      return { data: dir, names: join(dir, 'test.csv') };
    },
    problem: /line 4.*fields, expected/,
  },
  {
    name: 'CSV with a pixel above 255',
    make: (dir) => {
      const file = join(dir, 'single.csv');
      mkdirSync(dir, { recursive: true });
      const lines = csvText(train).split('\n');
      lines[12] = `${lines[12]!},`.replace(/,\d+,$/, ',256');
      writeFileSync(file, lines.join('\n'));
      return { data: file, names: file };
    },
    problem: /line 13, column 17: pixel 256 is out of range 0-255/,
  },
  {
    name: 'empty CSV file',
    make: (dir) => {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'train.csv'), '');
      writeFileSync(join(dir, 'test.csv'), csvText(test));
      return { data: dir, names: join(dir, 'train.csv') };
    },
    problem: /empty/,
  },
];

/** The run folder is absent, or marked INCOMPLETE and holds neither a model nor metrics. */
function expectNoCompleteLookingRun(out: string): void {
  if (!existsSync(out)) return;
  expect(existsSync(join(out, 'INCOMPLETE')), `${out} exists without INCOMPLETE`).toBe(true);
  expect(readFileSync(join(out, 'INCOMPLETE'), 'utf8')).toMatch(/not complete/);
  for (const f of ['model.safetensors', 'metrics.json', 'report.html']) expect(existsSync(join(out, f)), f).toBe(false);
}

describe.concurrent('hostile data through `densetrain train`: exit 2, one line naming file and problem, nothing complete-looking', () => {
  it.each(CASES.map((c, i) => [c.name, c, i] as const))('%s', async (_name, c, i) => {
    const dir = join(root, `case-${i}`);
    const { data, names, env } = c.make(dir);
    const out = join(root, `out-${i}`);
    const result = await runCli(['train', '--data', data, '--layers', '16,8,10', '--epochs', '1', '--batch-size', '4', '--out', out], {
      cwd: root,
      env: { DENSETRAIN_BACKEND: 'reference', ...env },
    });
    const lines = result.stderr.split('\n').filter((l) => l.trim() !== '');
    expect(result.code, `stderr: ${result.stderr}`).toBe(2);
    expect(lines, `exactly one line on stderr:\n${result.stderr}`).toHaveLength(1);
    expect(lines[0]).toMatch(/^densetrain: /);
    expect(lines[0]).toContain(names);
    expect(lines[0]).toMatch(c.problem);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.stdout).not.toMatch(/\n\s+at /);
    expectNoCompleteLookingRun(out);
  });

  it('--verbose adds the stack trace to the same first line', async () => {
    const dir = join(root, 'verbose');
    const file = idxDirWith(dir, 'trainImages', idxImages(train, { count: 1e9, height: 28, width: 28 }));
    const out = join(root, 'out-verbose');
    const result = await runCli(['train', '--data', dir, '--layers', '16,8,10', '--epochs', '1', '--out', out, '--verbose'], {
      cwd: root,
      env: { DENSETRAIN_BACKEND: 'reference' },
    });
    expect(result.code).toBe(2);
    expect(result.stderr.split('\n')[0]).toContain(file);
    expect(result.stderr).toMatch(/\n\s+at /);
    expectNoCompleteLookingRun(out);
  });
});

// ---------------------------------------------------------------------------------------------
// Options: the cases of the list not already in test/schema.test.ts / test/cli.usage.test.ts.

async function runInProcess(args: string[]): Promise<{ code: number; stderr: string }> {
  const err: string[] = [];
  const io: Io = { out: () => undefined, err: (l = '') => void err.push(l), tty: false, stderr: process.stderr };
  const code = await main(args, io);
  return { code, stderr: err.join('\n') };
}

describe('options: negative and zero sizes are usage errors naming the option', () => {
  const dataDir = (): string => {
    const dir = join(root, 'options-data');
    if (!existsSync(dir)) writeIdxDataset(dir, train, test);
    return dir;
  };
  it.each([
    [['--batch-size', '-8'], '--batch-size'],
    [['--epochs', '-1'], '--epochs'],
    [['--layers', '16,-8,10'], '--layers'],
    [['--layers', '16,0,10'], '--layers'],
    [['--schedule', 'step', '--step-size', '0'], '--step-size'],
    [['--patience', '-2'], '--patience'],
    [['--lr', '-0.0'], '--lr'],
  ])('%j', async (args, flag) => {
    const out = join(root, `opt-${Math.random().toString(36).slice(2)}`);
    const result = await runInProcess(['train', '--data', dataDir(), '--layers', '16,8,10', '--epochs', '1', '--out', out, ...args]);
    expect(result.code, result.stderr).toBe(2);
    const lines = result.stderr.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(flag);
    expect(existsSync(out)).toBe(false);
  });
});
