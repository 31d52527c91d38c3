/**
 * `densetrain info --model`: the summary of a trained run's model (layers, parameters per layer
 * and total, multiply-adds, scaling, provenance), its JSON form, a PyTorch-style file without
 * metadata, and bad input.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSafetensors } from '../src/model/safetensors.js';
import { ensureBuilt, runCli, writeTinyDataset } from './helpers/cli.js';

let dir: string;
let run: string;
beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), 'densetrain-info-'));
  const data = writeTinyDataset(join(dir, 'data'));
  run = join(dir, 'run');
  const trained = await runCli(['train', '--data', data.dir, '--layers', '64,16,10', '--activation', 'prelu', '--epochs', '2', '--batch-size', '16', '--standardize', '--out', run, '--quiet']);
  expect(trained.code, trained.stderr).toBe(0);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('densetrain info --model', () => {
  it('summarises layers, parameters, multiply-adds, scaling and the run it came from', async () => {
    const result = await runCli(['info', '--model', run]);
    expect(result.code, result.stderr).toBe(0);
    const out = result.stdout;
    expect(out).toContain(`model: ${join(run, 'model.safetensors')}`);
    expect(out).toContain('kind: densetrain model');
    expect(out).toContain('layers: 64 -> 16 -> 10, hidden activation prelu');
    // 16x64 + 16 + 1 slope = 1,041; 10x16 + 10 = 170; total 1,211. Multiply-adds 1,024 + 160.
    expect(out).toMatch(/layers\.0 .* 16 x 64 .* prelu \(learned slope -?[\d.]+\) .* 1,041 .* 1,024/);
    expect(out).toMatch(/layers\.1 .* 10 x 16 .* softmax .* 170 .* 160/);
    expect(out).toMatch(/total .* 1,211 .* 1,184/);
    expect(out).toContain('multiply-adds per image: 1,184; parameters: 1,211');
    expect(out).toMatch(/input scaling: \(pixel \/ 255 - [\d.]+\) \/ [\d.]+ \(standardised/);
    expect(out).toMatch(/from run: .*run: data .*data, 2 epochs \(kept epoch \d\), completed, test accuracy [\d.]+%/);
  });

  it('--json carries the same numbers', async () => {
    const result = await runCli(['info', '--model', join(run, 'model.safetensors'), '--json']);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as { summary: { parameters: number; multiplyAdds: number; layers: { parameters: number }[] }; scaling: { kind: string }; origin: { run: { epochs: number } } };
    expect(report.summary.parameters).toBe(1211);
    expect(report.summary.multiplyAdds).toBe(1184);
    expect(report.summary.layers.map((l) => l.parameters)).toEqual([1041, 170]);
    expect(report.scaling.kind).toBe('standardize');
    expect(report.origin.run.epochs).toBe(2);
  });

  it('a state dict without densetrain metadata needs --activation, and then says what is unknown', async () => {
    const file = join(dir, 'torch.safetensors');
    await writeSafetensors(file, [
      ['layers.0.weight', { shape: [4, 6], data: new Float32Array(24).fill(0.1) }],
      ['layers.0.bias', { shape: [4], data: new Float32Array(4) }],
      ['layers.2.weight', { shape: [3, 4], data: new Float32Array(12).fill(0.2) }],
      ['layers.2.bias', { shape: [3], data: new Float32Array(3) }],
    ]);
    const without = await runCli(['info', '--model', file]);
    expect(without.code).toBe(2);
    expect(without.stderr).toMatch(/hidden activation is unknown/);
    const result = await runCli(['info', '--model', file, '--activation', 'tanh']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('kind: safetensors state dict without densetrain metadata');
    expect(result.stdout).toContain('multiply-adds per image: 36; parameters: 43');
    expect(result.stdout).toContain('input scaling: unknown');
    expect(result.stdout).toContain('from run: unknown');
  });

  it('bad files: one line, exit 2', async () => {
    for (const args of [['--model', join(dir, 'nowhere.safetensors')], ['--model', join(dir, 'data', 'train.csv')], ['--model', run, '--activation', 'swish']]) {
      const result = await runCli(['info', ...args]);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr.trim().split('\n'), result.stderr).toHaveLength(1);
    }
  });
});
