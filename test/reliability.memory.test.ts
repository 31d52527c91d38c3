/**
 * Reliability, long runs and memory:
 * - RSS of a training process (sampled after a forced GC at every epoch end) grows by less than
 *   20 MB after epoch 5: 40 epochs on a 1,000-image subset of mnist-sample by default, and the
 *   issue's 200 epochs on the whole of mnist-sample with DENSETRAIN_LONG_TESTS=1.
 * - Creating and disposing 1,000 models (with their optimizer state) on each backend returns
 *   kernels.allocatedBytes() to its baseline; wasm linear memory stops growing; after a full GC,
 *   RSS (native, wasm) or V8's heap used + ArrayBuffers (reference, whose tensors are JS memory)
 *   stays within a bound.
 * - SIGINT during `densetrain train` stops after the current batch, keeps a checkpoint, writes
 *   metrics.json and the report so far (report.html), marks the folder INCOMPLETE, exits 130.
 *
 * Measurements run in child processes started with --expose-gc, so that the numbers are those of
 * a process doing only this work.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tryLoadBackend } from '../src/kernels/index.js';
import type { RunRecord } from '../src/train/types.js';
import { registerMissingBackends } from './helpers/backends.js';
import { collect, ensureBuilt, ROOT, signalWhenSeen, spawnCli, writeTinyDataset } from './helpers/cli.js';

const run = promisify(execFile);
const MB = 1024 * 1024;
const LONG = process.env['DENSETRAIN_LONG_TESTS'] === '1';
const dist = (path: string): string => JSON.stringify(join(ROOT, 'dist', 'src', path));

let tmp: string;
beforeAll(() => {
  ensureBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'densetrain-rel-mem-'));
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Runs an ES module snippet in `node --expose-gc` and parses the JSON it prints last. */
async function child<T>(script: string, timeoutMs: number): Promise<T> {
  const { stdout } = await run(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], {
    cwd: ROOT,
    timeout: timeoutMs,
    maxBuffer: 16 * MB,
    env: { ...process.env, DENSETRAIN_BACKEND: '' },
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as T;
}

interface RssRun {
  rss: number[];
  seconds: number;
  backend: string;
  trainCount: number;
}

/** Trains `epochs` epochs on the first `count` mnist-sample training images (all if 0), sampling RSS after GC at every epoch end. */
function trainingRss(backend: string, epochs: number, count: number, outDir: string): Promise<RssRun> {
  return child<RssRun>(
    `
    import { train } from ${dist('train/train.js')};
    import { loadDataset } from ${dist('data/registry.js')};
    import { subsetImageSet } from ${dist('data/split.js')};
    const full = await loadDataset('mnist-sample');
    const count = ${count} || full.train.count;
    const dataset = { ...full, train: subsetImageSet(full.train, Uint32Array.from({ length: count }, (_, i) => i)) };
    const rss = [];
    const { record, model } = await train(
      { epochs: ${epochs}, patience: 0, backend: ${JSON.stringify(backend)} },
      { dataset, outDir: ${JSON.stringify(outDir)}, onEpoch: () => { global.gc(); rss.push(process.memoryUsage().rss); } },
    );
    model.dispose();
    console.log(JSON.stringify({ rss, seconds: record.seconds, backend: record.backend.backend, trainCount: record.dataset.trainCount }));
    `,
    Math.max(120_000, epochs * 3_000),
  );
}

function describeRss(r: RssRun): string {
  const after5 = r.rss.slice(4);
  return `${r.backend}: ${r.rss.length} epochs on ${r.trainCount} images in ${r.seconds.toFixed(1)} s; RSS at epoch 5 ${(r.rss[4]! / MB).toFixed(1)} MB, max after ${(Math.max(...after5) / MB).toFixed(1)} MB, last ${(r.rss.at(-1)! / MB).toFixed(1)} MB`;
}

function expectBoundedGrowth(r: RssRun, epochs: number): void {
  expect(r.rss).toHaveLength(epochs);
  const growth = Math.max(...r.rss.slice(4)) - r.rss[4]!;
  console.log(`[reliability] ${describeRss(r)}; growth after epoch 5 ${(growth / MB).toFixed(2)} MB`);
  expect(growth, describeRss(r)).toBeLessThan(20 * MB);
}

registerMissingBackends('memory');
const backends = (['native', 'wasm', 'reference'] as const).filter((b) => tryLoadBackend(b).ok);
const fast = backends.filter((b) => b !== 'reference');

describe.concurrent('long runs: RSS does not grow after epoch 5', () => {
  for (const backend of fast) {
    it(`${backend}: 40 epochs on 1,000 mnist-sample images (900 train, 100 validation), checkpoint every epoch`, async () => {
      expectBoundedGrowth(await trainingRss(backend, 40, 1000, join(tmp, `rss-${backend}`)), 40);
    });
    it.runIf(LONG)(`${backend}: 200 epochs on the whole of mnist-sample (DENSETRAIN_LONG_TESTS=1)`, async () => {
      expectBoundedGrowth(await trainingRss(backend, 200, 0, join(tmp, `rss-long-${backend}`)), 200);
    }, 900_000);
  }
});

interface ChurnResult {
  baseline: number;
  after: number;
  rss100: number;
  rssEnd: number;
  /** V8's heap used + ArrayBuffers after a full GC. */
  js100: number;
  jsEnd: number;
  wasm100: number | null;
  wasmEnd: number | null;
  models: number;
}

function churn(backend: string, models: number): Promise<ChurnResult> {
  return child<ChurnResult>(
    `
    import { Mlp } from ${dist('model/mlp.js')};
    import { createOptimizer } from ${dist('optim/optimizer.js')};
    import { DEFAULT_CONFIG } from ${dist('train/defaults.js')};
    import { Rng } from ${dist('rng.js')};
    import { createWasmBackend } from ${dist('kernels/wasm.js')};
    import { tryLoadBackend } from ${dist('kernels/index.js')};
    const backend = ${JSON.stringify(backend)};
    let kernels, memory = null;
    if (backend === 'wasm') ({ kernels, exports: { memory } } = createWasmBackend());
    else kernels = tryLoadBackend(backend).kernels;
    // Node runs N-API finalizers (and frees what they hold) on the event loop, as it does in a
    // real run, which yields between batches: yield every few models and before each sample.
    const tick = () => new Promise((resolve) => setImmediate(resolve));
    const settle = async () => { global.gc(); await tick(); global.gc(); await tick(); return process.memoryUsage(); };
    const baseline = kernels.allocatedBytes();
    let rss100 = 0, js100 = 0, wasm100 = null;
    for (let i = 1; i <= ${models}; i++) {
      const model = new Mlp({ layers: [784, 128, 64, 10], activation: i % 2 ? 'relu' : 'prelu', alpha: 0.25 }, { kernels, capacity: 64, rng: new Rng(i) });
      const optimizer = createOptimizer(kernels, model.parameters, { ...DEFAULT_CONFIG, optimizer: i % 3 ? 'adam' : 'sgd' });
      if (i % 10 === 0) {
        // Every tenth model also trains one step (the kernels' scratch memory is exercised too).
        model.inputTensor.data.fill(0.5);
        for (let r = 0; r < 8; r++) model.labelTensor.data[r] = r;
        model.computeGradients(8, 0);
        optimizer.step(0.01);
      }
      optimizer.dispose();
      model.dispose();
      if (i % 10 === 0) await tick();
      if (i === 100) { const m = await settle(); rss100 = m.rss; js100 = m.heapUsed + m.arrayBuffers; wasm100 = memory && memory.buffer.byteLength; }
    }
    const end = await settle();
    const rssEnd = end.rss, jsEnd = end.heapUsed + end.arrayBuffers;
    console.log(JSON.stringify({ baseline, after: kernels.allocatedBytes(), rss100, rssEnd, js100, jsEnd, wasm100, wasmEnd: memory && memory.buffer.byteLength, models: ${models} }));
    `,
    240_000,
  );
}

describe.concurrent('creating and disposing 1,000 models leaks no backend memory', () => {
  for (const backend of backends) {
    it(`${backend}`, async () => {
      const r = await churn(backend, 1000);
      const line = `${backend}: allocatedBytes ${r.baseline} -> ${r.after}; RSS after 100 models ${(r.rss100 / MB).toFixed(1)} MB, after ${r.models} ${(r.rssEnd / MB).toFixed(1)} MB` +
        `; JS heap + ArrayBuffers ${(r.js100 / MB).toFixed(1)} -> ${(r.jsEnd / MB).toFixed(1)} MB` +
        (r.wasmEnd !== null ? `; wasm memory ${(r.wasm100! / MB).toFixed(1)} -> ${(r.wasmEnd / MB).toFixed(1)} MB` : '');
      console.log(`[reliability] ${line}`);
      expect(r.after, line).toBe(r.baseline);
      // 900 more models of ~1.3 MB of parameters, gradients and activations each: a leak of even
      // the smallest weight matrix (64 x 10) per model would add 2.3 MB, the largest 360 MB.
      // The reference backend's tensors are ordinary JS memory (ArrayBuffers): V8 returns them
      // to its own heap, not necessarily to the OS, so RSS says little there; what V8 counts as
      // live after a full GC (heap used + ArrayBuffers) is the exact measure, and a leak of the
      // smallest matrix per model (2.3 MB) would exceed its bound. Addon and wasm memory are
      // outside V8's counts: for them RSS is the measure.
      if (backend === 'reference') expect(r.jsEnd - r.js100, line).toBeLessThan(2 * MB);
      else expect(r.rssEnd - r.rss100, line).toBeLessThan(8 * MB);
      if (r.wasmEnd !== null) expect(r.wasmEnd, line).toBe(r.wasm100);
    });
  }
});

describe('SIGINT during `densetrain train`', () => {
  it('stops after the current batch, keeps a checkpoint and writes the report so far, exits 130', async () => {
    const data = writeTinyDataset(join(tmp, 'tiny'));
    const out = join(tmp, 'interrupted');
    const child = spawnCli(['train', '--data', data.dir, '--layers', '64,16,10', '--epochs', '100000', '--patience', '0', '--batch-size', '4', '--out', out, '--quiet'], { cwd: tmp });
    const sent = signalWhenSeen(child, /^epoch +3\//m);
    const result = await collect(child);
    expect(sent(), result.stderr).toBe(true);
    expect(result.code, result.stderr).toBe(130);
    const record = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as RunRecord;
    expect(record.stopReason).toBe('interrupted');
    expect(record.epochs.length).toBeGreaterThanOrEqual(3);
    expect(record.stopMessage).toMatch(/^interrupted (in epoch \d+ after batch \d+ of \d+|after epoch \d+)$/);
    // The report so far: written, named on stdout, and it shows the epochs that ran.
    const report = join(out, 'report.html');
    expect(existsSync(report)).toBe(true);
    expect(result.stdout).toContain(`report so far: ${report}`);
    expect(readFileSync(report, 'utf8')).toContain('interrupted');
    expect(existsSync(join(out, 'checkpoint.safetensors'))).toBe(true);
    expect(readFileSync(join(out, 'INCOMPLETE'), 'utf8')).toMatch(/interrupted.*--resume/);
  });
});
