/**
 * The PyTorch side of `densetrain bench train --vs-torch` (src/bench/torch.ts + bench/torch_train.py):
 * a missing python or torch is skipped with one line saying how to enable it; with a python that
 * has torch (DENSETRAIN_TORCH_PYTHON, else /usr/bin/python3 when it has torch), a tiny model
 * trains in fp32 and bf16 autocast on a small synthetic set, and the ratios attach to the rows of
 * the same model and precision. No timing assertions.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { attachTorch, runTorchBench, type TorchOptions } from '../src/bench/torch.js';
import type { TrainBenchRow } from '../src/bench/train.js';
import type { ImageSet } from '../src/data/types.js';

const tmp = mkdtempSync(join(tmpdir(), 'densetrain-torch-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function tinySet(count: number): ImageSet {
  const features = 16;
  const images = new Uint8Array(count * features);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = i % 4;
    for (let p = 0; p < features; p++) images[i * features + p] = (p * 37 + labels[i]! * 60 + i) % 256;
  }
  return { count, height: 4, width: 4, features, images, labels };
}

const base: Omit<TorchOptions, 'env'> = {
  models: [{ name: '16-8-4', layers: [16, 8, 4], batchSize: 32 }],
  precisions: ['fp32', 'bf16'],
  threads: 1,
  epochs: 1,
  warmup: 1,
  trainSet: tinySet(256),
  recipe: { lr: 0.05, momentum: 0.9, nesterov: true, l2: 1e-3 },
};

function torchPython(): string | null {
  const candidates = [process.env['DENSETRAIN_TORCH_PYTHON'], '/usr/bin/python3', 'python3'].filter((p): p is string => !!p);
  return candidates.find((p) => spawnSync(p, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0) ?? null;
}

describe('bench --vs-torch', () => {
  it('skips with one line naming the remedy when python cannot run', async () => {
    const r = await runTorchBench({ ...base, env: { ...process.env, DENSETRAIN_TORCH_PYTHON: join(tmp, 'no-such-python') } });
    expect(r.ok).toBe(false);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(/^PyTorch comparison skipped: cannot run .*no-such-python.*python3-torch/);
  });

  it('skips with one line when the python has no torch (the script exits 3)', async () => {
    const fake = join(tmp, 'python-without-torch');
    writeFileSync(fake, '#!/bin/sh\nexit 3\n');
    chmodSync(fake, 0o755);
    const r = await runTorchBench({ ...base, env: { ...process.env, DENSETRAIN_TORCH_PYTHON: fake } });
    expect(r.ok).toBe(false);
    expect(r.lines).toEqual([expect.stringMatching(/^PyTorch comparison skipped: .* has no torch; install PyTorch/)]);
  });

  const python = torchPython();
  it.runIf(python !== null)('trains the same model in fp32 and bf16 autocast and attaches the ratios', async () => {
    const env = { ...process.env, DENSETRAIN_TORCH_PYTHON: python!, OPENBLAS_CORETYPE: 'Haswell' };
    const r = await runTorchBench({ ...base, env });
    if (!r.ok) throw new Error(r.reason);
    expect(r.unsetEnv).toEqual({ OPENBLAS_CORETYPE: 'Haswell' });
    expect(r.run.images).toBe(256);
    expect(r.run.rows.map((x) => [x.model, x.precision])).toEqual([['16-8-4', 'fp32'], ['16-8-4', 'bf16']]);
    for (const row of r.run.rows) {
      expect(row.epochSeconds).toHaveLength(1);
      expect(row.secondsPerEpoch).toBeGreaterThan(0);
      expect(Number.isFinite(row.finalTrainLoss)).toBe(true);
    }
    const rows = [
      { model: '16-8-4', precision: 'bf16', secondsPerEpoch: 2 * r.run.rows[1]!.secondsPerEpoch },
      { model: '16-8-4', precision: 'fp32', secondsPerEpoch: null },
      { model: 'other', precision: 'fp32', secondsPerEpoch: 1 },
    ] as unknown as TrainBenchRow[];
    attachTorch(rows, r);
    expect(rows[0]!.torchRatio).toBeCloseTo(2, 10);
    expect(rows[1]!.torchRatio).toBeNull();
    expect(rows[2]!.torchRatio).toBeUndefined();
    expect(r.lines[0]).toMatch(/^PyTorch .* OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for the subprocess \(were OPENBLAS_CORETYPE=Haswell\)/);
  }, 120_000);
});
