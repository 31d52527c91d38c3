/**
 * ONNX export checked by the real runtime: for every activation, a model trained for one epoch on
 * mnist-sample is exported and run in onnxruntime-node on the 2,000 raw test images; its argmax
 * must equal densetrain's on every image and its probabilities agree within 1e-5. Also: the
 * graph's contents and metadata (decoded with onnx-proto, ONNX's schema generated independently
 * of densetrain's), refusals, and the CLI (export, then the same argmax as
 * `densetrain eval --predictions`).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { predictImageSet } from '../src/train/predict.js';
import { packageVersion } from '../src/cli/version.js';
import { loadDataset } from '../src/data/registry.js';
import type { Dataset } from '../src/data/types.js';
import onnxProto from 'onnx-proto';
import { exportOnnx, OnnxExportError } from '../src/export/onnx.js';
import { createReferenceKernels } from '../src/kernels/reference.js';
import { ACTIVATION_NAMES, type ActivationName } from '../src/kernels/types.js';
import { argmaxRows } from '../src/train/metrics.js';
import { createModel } from '../src/model/mlp.js';
import { train } from '../src/train/train.js';
import { ensureBuilt, runCli } from './helpers/cli.js';

let dataset: Dataset;
const dirs: string[] = [];
beforeAll(async () => {
  dataset = await loadDataset('mnist-sample', { seed: 1 });
});
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** The test images as raw 0-255 floats, the way a caller feeds the ONNX model. */
function rawPixels(d: Dataset): Float32Array {
  return Float32Array.from(d.test.images);
}

async function runOnnx(bytes: Uint8Array, pixels: Float32Array, count: number, features: number): Promise<{ probabilities: Float32Array; logits: Float32Array }> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    expect(session.inputNames).toEqual(['pixels']);
    expect(session.outputNames).toEqual(['logits', 'probabilities']);
    const out = await session.run({ pixels: new ort.Tensor('float32', pixels, [count, features]) });
    expect(out['probabilities']!.dims).toEqual([count, 10]);
    return { probabilities: out['probabilities']!.data as Float32Array, logits: out['logits']!.data as Float32Array };
  } finally {
    await session.release();
  }
}

/** Decoded with onnx-proto's schema (generated from ONNX's onnx.proto), independent of densetrain's. */
function decodeOnnx(bytes: Uint8Array) {
  const { onnx } = onnxProto;
  return onnx.ModelProto.toObject(onnx.ModelProto.decode(bytes), { longs: Number, bytes: Array });
}

const OP_OF: Record<ActivationName, string | null> = { relu: 'Relu', leaky_relu: 'LeakyRelu', prelu: 'PRelu', sigmoid: 'Sigmoid', tanh: 'Tanh', linear: null };

describe('ONNX export in onnxruntime-node', () => {
  for (const activation of ACTIVATION_NAMES) {
    // Standardised pixels for some activations, plain x/255 for the others: both scalings go through the graph.
    const standardize = activation !== 'sigmoid' && activation !== 'linear';
    it(`${activation} (${standardize ? 'standardised' : 'unit'} pixels): same argmax on all 2,000 test images, probabilities within 1e-5`, async () => {
      const { model } = await train(
        { data: 'mnist-sample', layers: [784, 48, 24, 10], activation, alpha: activation === 'leaky_relu' ? 0.2 : 0.25, epochs: 1, standardize, valSplit: 0, lr: 0.05 },
        { dataset },
      );
      try {
        const count = dataset.test.count;
        const ours = predictImageSet(model, dataset.test, model.scaling);
        const bytes = exportOnnx(model, { producerVersion: packageVersion() });
        const onnx = await runOnnx(bytes, rawPixels(dataset), count, 784);

        const a = argmaxRows(ours, count, 10);
        const b = argmaxRows(onnx.probabilities, count, 10);
        let mismatches = 0;
        for (let i = 0; i < count; i++) if (a[i] !== b[i]) mismatches++;
        expect(mismatches).toBe(0);
        let worst = 0;
        for (let i = 0; i < ours.length; i++) worst = Math.max(worst, Math.abs(ours[i]! - onnx.probabilities[i]!));
        expect(worst).toBeLessThanOrEqual(1e-5);
        console.log(`[onnx] ${activation}: ${count} images, argmax mismatches ${mismatches}, largest probability difference ${worst.toExponential(2)}`);
        // The model learned something (so agreeing is not agreeing on noise).
        let correct = 0;
        for (let i = 0; i < count; i++) if (b[i] === dataset.test.labels[i]) correct++;
        expect(correct / count).toBeGreaterThan(0.6);

        const decoded = decodeOnnx(bytes);
        expect(decoded.opsetImport).toEqual([{ domain: '', version: 13 }]);
        const ops = decoded.graph!.node!.map((n) => n.opType);
        expect(ops.filter((op) => op === 'Gemm')).toHaveLength(3);
        const activationOp = OP_OF[activation];
        if (activationOp) expect(ops.filter((op) => op === activationOp)).toHaveLength(2);
        expect(ops.slice(0, standardize ? 3 : 1)).toEqual(standardize ? ['Div', 'Sub', 'Div'] : ['Div']);
        expect(ops[ops.length - 1]).toBe('Softmax');
        if (activation === 'leaky_relu') {
          const leaky = decoded.graph!.node!.find((n) => n.opType === 'LeakyRelu')!;
          expect(leaky.attribute![0]!.f).toBeCloseTo(0.2, 6);
        }
        const meta = Object.fromEntries(decoded.metadataProps!.map((p) => [p.key, p.value]));
        expect(JSON.parse(meta['class_names']!)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
        expect(meta['densetrain_version']).toBe(packageVersion());
        expect(JSON.parse(meta['pixel_scaling']!)).toEqual(model.scaling);
        expect(decoded.producerName).toBe('densetrain');
        expect(decoded.irVersion).toBe(7);
        const w0 = decoded.graph!.initializer!.find((t) => t.name === 'layers.0.weight')!;
        expect(w0.dims).toEqual([48, 784]);
        expect(w0.dataType).toBe(1);
        expect((w0.rawData as unknown as number[]).length).toBe(48 * 784 * 4);
        const input = decoded.graph!.input![0]!;
        expect(input.name).toBe('pixels');
        expect(input.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || d.dimValue)).toEqual(['N', 784]);
      } finally {
        model.dispose();
      }
    });
  }

  it('refuses a model it cannot express, naming why', () => {
    const model = createModel({ layers: [16, 8, 3], activation: 'relu', alpha: 0 }, { kernels: createReferenceKernels() });
    try {
      expect(() => exportOnnx(model, { producerVersion: 'x' })).toThrow(/pixel scaling is unknown/);
      model.scaling = { kind: 'unit' };
      expect(exportOnnx(model, { producerVersion: 'x' }).length).toBeGreaterThan(16 * 8 * 4);
      const w = model.getParameters()['layers.1.weight']!;
      w[5] = Number.NaN;
      model.setParameters({ 'layers.1.weight': w });
      expect(() => exportOnnx(model, { producerVersion: 'x' })).toThrow(OnnxExportError);
      expect(() => exportOnnx(model, { producerVersion: 'x' })).toThrow(/layers\.1\.weight holds a non-finite value \(NaN\) at index 5/);
    } finally {
      model.dispose();
    }
  });

  it('densetrain export: the ONNX model gives the same argmax as densetrain eval --predictions on every test image', async () => {
    ensureBuilt();
    const dir = await mkdtemp(join(tmpdir(), 'densetrain-onnx-'));
    dirs.push(dir);
    const run = join(dir, 'run');
    const trained = await runCli(['train', '--layers', '784,32,10', '--epochs', '1', '--out', run, '--quiet', '--activation', 'prelu']);
    expect(trained.code, trained.stderr).toBe(0);
    const onnxFile = join(dir, 'model.onnx');
    const exported = await runCli(['export', '--model', run, '--onnx', onnxFile]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(/wrote .*model\.onnx \([\d,]+ bytes, ONNX opset 13\)/);
    const predictions = join(dir, 'preds.json');
    const evaluated = await runCli(['eval', '--model', run, '--data', 'mnist-sample', '--predictions', predictions]);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    const evalRows = JSON.parse(await readFile(predictions, 'utf8')) as { predicted: number; probs: number[] }[];
    const onnx = await runOnnx(await readFile(onnxFile), rawPixels(dataset), dataset.test.count, 784);
    const b = argmaxRows(onnx.probabilities, dataset.test.count, 10);
    expect(evalRows).toHaveLength(dataset.test.count);
    let worst = 0;
    evalRows.forEach((row, i) => {
      expect(b[i], `image ${i}`).toBe(row.predicted);
      row.probs.forEach((p, c) => (worst = Math.max(worst, Math.abs(p - onnx.probabilities[i * 10 + c]!))));
    });
    expect(worst).toBeLessThanOrEqual(1e-5);

    // A model ONNX cannot express here: one line, exit 2, nothing written.
    const bad = await runCli(['export', '--model', join(dir, 'missing.safetensors'), '--onnx', join(dir, 'x.onnx')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  });
});
