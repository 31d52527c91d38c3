/**
 * The test set is evaluated once per run: train() evaluates the kept weights on it and returns
 * the probabilities of that same pass; the run folder's metrics.json, the terminal summary and
 * report.html all use them (no second prediction pass, nothing to reconcile).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { ImageSet } from '../src/data/types.js';
import { runTrial } from '../src/experiments/trial.js';
import { createReferenceKernels } from '../src/kernels/reference.js';
import type { Kernels } from '../src/kernels/types.js';
import { Mlp } from '../src/model/mlp.js';
import { argmaxRows, confusionMatrix } from '../src/train/metrics.js';
import { DEFAULT_CONFIG } from '../src/train/defaults.js';
import { train } from '../src/train/train.js';
import type { RunRecord, TrainConfig } from '../src/train/types.js';
import { syntheticDataset } from './helpers/synthetic-data.js';

const CONFIG: Partial<TrainConfig> = { layers: [64, 16, 4], epochs: 2, batchSize: 32, lr: 0.05, valSplit: 0.2, seed: 3, data: 'synthetic' };

/**
 * Kernels whose gatherRows (how train() feeds a model from an image set) counts the calls that
 * read the test set's pixels.
 */
function countingTestPasses(test: ImageSet): { kernels: Kernels; testGathers: () => number } {
  const inner = createReferenceKernels();
  let gathers = 0;
  // The backend object is frozen: a child object carries the counting method.
  const kernels = Object.create(inner) as Kernels;
  Object.defineProperty(kernels, 'gatherRows', {
    value: (...args: Parameters<Kernels['gatherRows']>) => {
      if (args[2] === test.images) gathers++;
      return inner.gatherRows(...args);
    },
  });
  return { kernels, testGathers: () => gathers };
}

describe('the test set, once per run', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('train() returns the probabilities of the evaluation behind record.test', async () => {
    const dataset = syntheticDataset({ train: 200, test: 90 });
    const { record, model, testProbabilities } = await train(CONFIG, { dataset, kernels: createReferenceKernels() });
    model.dispose();
    expect(record.test).not.toBeNull();
    expect(testProbabilities).not.toBeNull();
    const probs = testProbabilities!;
    expect(probs.length).toBe(90 * 4);
    const predictions = argmaxRows(probs, 90, 4);
    expect(confusionMatrix(dataset.test.labels, predictions, 4)).toEqual(record.test!.confusion);
    // Each row is a distribution.
    for (let i = 0; i < 90; i++) expect(probs.subarray(i * 4, i * 4 + 4).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  });

  it('a trial reads the test set in one pass, and its report and metrics.json agree', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'densetrain-test-once-'));
    dirs.push(dir);
    const dataset = syntheticDataset({ train: 200, test: 90 });
    const { kernels, testGathers } = countingTestPasses(dataset.test);
    // A second pass over the test set would predict it (model.predict, as `eval` and `predict` do).
    const predict = vi.spyOn(Mlp.prototype, 'predict');
    const outcome = await runTrial(
      { id: 't1', config: { ...DEFAULT_CONFIG, ...CONFIG } as TrainConfig, runDir: join(dir, 't1'), resume: false },
      { epoch: () => ({ stop: false }) },
      { dataset: async () => dataset, kernels: () => kernels },
      new AbortController().signal,
    );
    expect(outcome.status).toBe('completed');
    // 90 test images fit one evaluation chunk (the model holds at least 256 rows): one pass, one gather.
    expect(testGathers()).toBe(1);
    expect(predict).not.toHaveBeenCalled();
    predict.mockRestore();
    const saved = JSON.parse(await readFile(join(dir, 't1', 'metrics.json'), 'utf8')) as RunRecord;
    expect(saved.test).toEqual(outcome.record!.test);
    const html = await readFile(join(dir, 't1', 'report.html'), 'utf8');
    expect(html).not.toMatch(/differs from the one computed/);
    // The per-image sections are there: the report had the probabilities of that one pass.
    expect(html).toMatch(/data:image\/png;base64,/);
  });
});
