/**
 * Reliability, round two: size is checked before work starts.
 * - A model whose single tensor exceeds what a backend allocates, whose run needs more memory than
 *   the machine has, or whose checkpoint could not be written and read back as one Node Buffer,
 *   is refused before anything is allocated: exit 2, one line naming --layers / --batch-size with
 *   the bytes needed and available, and no run folder left behind.
 * - compare checks every member first: a huge last member stops the comparison before the first
 *   member trains.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatBytes, footprintProblems, trainingFootprint } from '../src/train/footprint.js';
import { checkConfigAgainstData, ConfigError } from '../src/train/schema.js';
import { ensureBuilt, runCli, writeTinyDataset, type TinyDataset } from './helpers/cli.js';
import { expectOneLine } from './helpers/one-line.js';

let tmp: string;
let data: TinyDataset;

beforeAll(() => {
  ensureBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'densetrain-rel-limits-'));
  data = writeTinyDataset(join(tmp, 'tiny'));
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const flag = (key: 'layers' | 'batchSize') => (key === 'layers' ? '--layers' : '--batch-size');

describe('the footprint of a configuration', () => {
  it('counts parameters, checkpoint bytes and the largest tensor', () => {
    const f = trainingFootprint({ layers: [784, 256, 128, 10], batchSize: 64, optimizer: 'sgd', momentum: 0.9, activation: 'relu' });
    const params = 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10;
    expect(f.parameters).toBe(params);
    expect(f.checkpointBytes).toBe(params * 3 * 4); // weights, best weights, velocity
    expect(f.largest).toMatchObject({ elements: 784 * 256, key: 'layers' });
    const adam = trainingFootprint({ layers: [784, 256, 128, 10], batchSize: 64, optimizer: 'adam', activation: 'relu' });
    expect(adam.checkpointBytes).toBe(params * 4 * 4);
    expect(trainingFootprint({ layers: [4, 3, 2], batchSize: 4096, optimizer: 'sgd', momentum: 0 }).largest).toMatchObject({ elements: 4096 * 4, key: 'batchSize' });
  });

  it('names the option and gives bytes needed and available', () => {
    const limits = { memoryBytes: 1 << 30, fileBytes: 1 << 30 };
    const config = { layers: [784, 40000, 10], batchSize: 64, optimizer: 'adam' as const };
    const problems = footprintProblems(config, flag, limits);
    const needed = trainingFootprint(config).memoryBytes;
    expect(problems[0]).toBe(
      `--layers 784,40000,10 with --batch-size 64 needs about ${formatBytes(needed)} of memory (31,800,010 parameters, optimizer state, activations, checkpoint), but this machine has 1.0 GB`,
    );
    expect(footprintProblems({ layers: [784, 100, 10], batchSize: 64 }, flag, limits)).toEqual([]);
    expect(footprintProblems({ layers: [784, 100, 10], batchSize: 3_000_000 }, flag, limits)[0]).toMatch(/^--batch-size: the input batch \(3000000 rows of 784\) would hold 2,352,000,000 values/);
    expect(footprintProblems({ layers: [10, 300_000, 10], batchSize: 8000 }, flag, limits)[0]).toMatch(/^--batch-size: layer 0's activations for a batch \(8000 rows of 300000\) would hold 2,400,000,000 values/);
    // Through the data check, as a ConfigError.
    const shape = { features: 784, height: 28, width: 28, classes: 10, trainCount: 1000 };
    expect(() => checkConfigAgainstData(config, shape, {}, limits)).toThrow(ConfigError);
  });
});

describe.concurrent('the CLI refuses before training, leaving no folder', () => {
  it.each([
    [['--layers', '64,100000000,10'], /^densetrain: --layers: layer 0's weight matrix \(100000000 x 64\) would hold 6,400,000,000 values; a tensor holds at most 2,147,483,647$/],
    [['--layers', '64,40000,40000,10'], /^densetrain: --layers 64,40000,40000,10.*(needs about [\d.]+ GB of memory .* but this machine has [\d.]+ GB|its checkpoint would be [\d.]+ GB, more than)/],
  ])('train %j', async (args, line) => {
    const out = join(tmp, `out-${args[1]}`);
    const result = await runCli(['train', '--data', data.dir, '--epochs', '1', '--out', out, ...args], { cwd: tmp, timeoutMs: 60_000, env: { DENSETRAIN_BACKEND: 'reference' } });
    expectOneLine(result, '--layers', line);
    expect(existsSync(out)).toBe(false);
  });

  it('compare validates every member first: nothing is trained when the last is too large', async () => {
    const small = join(tmp, 'small.json');
    const big = join(tmp, 'big.json');
    writeFileSync(small, JSON.stringify({ layers: [64, 8, 10] }));
    writeFileSync(big, JSON.stringify({ layers: [64, 100000000, 10] }));
    const out = join(tmp, 'compare');
    const result = await runCli(['compare', '--data', data.dir, '--epochs', '1', '--config', small, '--config', big, '--out', out], {
      cwd: tmp,
      timeoutMs: 60_000,
      env: { DENSETRAIN_BACKEND: 'reference' },
    });
    expectOneLine(result, `${big}: "layers"`, /weight matrix \(100000000 x 64\) would hold 6,400,000,000 values/);
    expect(result.stdout).not.toMatch(/\[1\/2\]/);
    expect(existsSync(out)).toBe(false);
  });
});
