/**
 * Reliability, round two: nothing non-finite is saved or trusted, and the library keeps a
 * model usable after an error.
 * - A model or checkpoint holding a NaN or an infinity (with valid checksums: written so on
 *   purpose) is refused on load, naming the file and the tensor (exit 2 in the CLI).
 * - A slope that cannot be represented in float32 (--alpha 1e39, -1e300) is refused up front
 *   naming --alpha; a huge but finite slope diverges with a message naming the slope.
 * - A failed lossAndGradients (a batch too large for the backend) leaves the model exactly as it
 *   was and leaks nothing; every method of a disposed model throws DisposedError, on every backend.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModel, DisposedError } from '../src/index.js';
import { loadModel, MODEL_FILE } from '../src/model/load.js';
import { CHECKPOINT_FILE, readCheckpoint } from '../src/train/checkpoint.js';
import { CheckpointError, decodeSafetensors, encodeSafetensors } from '../src/model/safetensors.js';
import { train } from '../src/train/train.js';
import { loadedBackends, registerMissingBackends } from './helpers/backends.js';
import { ensureBuilt, runCli, writeTinyDataset, type TinyDataset } from './helpers/cli.js';
import { expectOneLine } from './helpers/one-line.js';
import { syntheticDataset } from './helpers/synthetic-data.js';

let tmp: string;
let data: TinyDataset;
let run: string;

beforeAll(async () => {
  ensureBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'densetrain-rel-model-'));
  data = writeTinyDataset(join(tmp, 'tiny'));
  run = join(tmp, 'run');
  const result = await runCli(['train', '--data', data.dir, '--layers', '64,16,10', '--epochs', '1', '--optimizer', 'adam', '--out', run, '--quiet'], {
    cwd: tmp,
    timeoutMs: 60_000,
    env: { DENSETRAIN_BACKEND: 'reference' },
  });
  expect(result.code, result.stderr).toBe(0);
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

registerMissingBackends('model reliability');

/** A copy of a safetensors file with one value of one tensor replaced; checksums recomputed. */
function withValue(from: string, to: string, tensor: string, index: number, value: number): void {
  const { tensors, metadata } = decodeSafetensors(readFileSync(from), from);
  const meta = { ...metadata };
  delete meta['sha256'];
  delete meta['header_sha256'];
  tensors.get(tensor)!.data[index] = value;
  writeFileSync(to, encodeSafetensors(tensors, meta));
}

describe.concurrent('nothing non-finite is trusted', () => {
  it.each([
    ['NaN in layers.0.weight', 'layers.0.weight', 3, Number.NaN, /tensor layers\.0\.weight holds NaN at index 3/],
    ['Infinity in layers.1.bias', 'layers.1.bias', 0, Number.POSITIVE_INFINITY, /tensor layers\.1\.bias holds Infinity at index 0/],
  ])('a model file with %s: eval --model and loadModel refuse it', async (name, tensor, index, value, problem) => {
    const file = join(tmp, `model-${name.replace(/\W+/g, '-')}.safetensors`);
    withValue(join(run, MODEL_FILE), file, tensor, index, value);
    const result = await runCli(['eval', '--model', file, '--data', data.dir], { cwd: tmp, timeoutMs: 60_000, env: { DENSETRAIN_BACKEND: 'reference' } });
    expectOneLine(result, file, problem);
    await expect(loadModel(file)).rejects.toThrow(CheckpointError);
  });

  it('a PyTorch-style state dict with a NaN is refused too', async () => {
    const file = join(tmp, 'foreign.safetensors');
    const weight = new Float32Array(64 * 10).fill(0.01);
    weight[7] = Number.NaN;
    writeFileSync(file, encodeSafetensors([['layers.0.weight', { shape: [10, 64], data: weight }], ['layers.0.bias', { shape: [10], data: new Float32Array(10) }]]));
    await expect(loadModel(file, { activation: 'relu' })).rejects.toThrow(/tensor layers\.0\.weight holds NaN at index 7/);
  });

  it('a checkpoint with -Infinity in the optimizer state: --resume refuses it', async () => {
    const dir = join(tmp, 'ckpt-inf');
    const { cpSync } = await import('node:fs');
    cpSync(run, dir, { recursive: true });
    const name = [...decodeSafetensors(readFileSync(join(run, CHECKPOINT_FILE)), 'x').tensors.keys()].find((n) => n.startsWith('optim.'))!;
    withValue(join(run, CHECKPOINT_FILE), join(dir, CHECKPOINT_FILE), name, 1, Number.NEGATIVE_INFINITY);
    const result = await runCli(['train', '--resume', dir, '--epochs', '2'], { cwd: tmp, timeoutMs: 60_000 });
    expectOneLine(result, join(dir, CHECKPOINT_FILE), new RegExp(`tensor ${name.replace(/\./g, '\\.')} holds -Infinity at index 1`));
    await expect(readCheckpoint(dir)).rejects.toThrow(CheckpointError);
  });

  it.each([
    [['--activation', 'prelu', '--alpha', '1e39']],
    [['--activation', 'leaky_relu', '--alpha', '-1e300']],
  ])('%j: refused up front naming --alpha, no run folder', async (args) => {
    const out = join(tmp, `alpha-${args[3]}`);
    const result = await runCli(['train', '--data', data.dir, '--layers', '64,16,10', '--epochs', '1', '--out', out, ...args], { cwd: tmp, timeoutMs: 60_000 });
    expectOneLine(result, '--alpha', /must fit in float32/);
    expect(existsSync(out)).toBe(false);
  });

  it('a huge finite slope diverges with a message naming the slope; nothing non-finite is written', async () => {
    const out = join(tmp, 'huge-slope');
    const { record, model } = await train(
      { layers: [64, 32, 32, 32, 4], activation: 'leaky_relu', alpha: 1e30, epochs: 2, batchSize: 16, backend: 'reference' },
      { dataset: syntheticDataset({ train: 160, test: 40 }), outDir: out },
    );
    model.dispose();
    expect(record.stopReason).toBe('diverged');
    expect(record.stopMessage).toMatch(/the leaky_relu slope alpha 1e\+30 multiplies activations .* try a slope of at most 1 in size/);
    if (existsSync(join(out, MODEL_FILE))) (await loadModel(out)).dispose(); // loads: so it is finite
  });
});

describe('the library keeps its model usable after an error', () => {
  for (const { name, kernels } of loadedBackends()) {
    it(`${name}: a batch too large to allocate leaves the model as it was, leaking nothing`, () => {
      // capacity 1: a 2^15-row batch needs a 2^15 x 2^16 activation buffer, beyond any backend's largest tensor (2^31 - 1).
      const model = createModel({ layers: [2, 2 ** 16, 2], activation: 'relu', alpha: 0 }, { kernels, capacity: 1, seed: 3 });
      try {
        const x = Float32Array.of(0.5, -0.25);
        const before = model.lossAndGradients(x, [1]);
        const params = model.getParameters();
        const bytes = kernels.allocatedBytes();
        expect(() => model.lossAndGradients(new Float32Array(2 ** 15 * 2), new Uint8Array(2 ** 15))).toThrow(/largest tensor|at most 2\^31-1/);
        expect(kernels.allocatedBytes()).toBe(bytes);
        const after = model.lossAndGradients(x, [1]);
        expect(after.loss).toBe(before.loss);
        for (const [p, g] of Object.entries(before.gradients)) expect(Buffer.from(after.gradients[p]!.buffer).equals(Buffer.from(g.buffer)), p).toBe(true);
        for (const [p, v] of Object.entries(model.getParameters())) expect(Buffer.from(v.buffer).equals(Buffer.from(params[p]!.buffer)), p).toBe(true);
        expect(model.predict(x, 1)).toHaveLength(2);
      } finally {
        model.dispose();
      }
    });

    it(`${name}: every method of a disposed model throws DisposedError`, async () => {
      const model = createModel({ layers: [4, 3, 2], activation: 'prelu', alpha: 0.25 }, { kernels });
      model.dispose();
      const x = new Float32Array(4);
      const calls: [string, () => unknown][] = [
        ['predict', () => model.predict(x, 1)],
        ['logits', () => model.logits(x, 1)],
        ['lossAndGradients', () => model.lossAndGradients(x, [0])],
        ['getParameters', () => model.getParameters()],
        ['setParameters', () => model.setParameters({})],
      ];
      for (const [method, call] of calls) expect(call, method).toThrow(DisposedError);
      await expect(model.save(join(tmp, 'never.safetensors'))).rejects.toThrow(DisposedError);
      expect(existsSync(join(tmp, 'never.safetensors'))).toBe(false);
      model.dispose(); // a second dispose is harmless
    });
  }
});
