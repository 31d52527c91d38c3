/**
 * Reliability, round two: faithful resume and trusted metadata.
 * - A checkpoint records the backend, ISA and threads that actually ran (never 'auto') and the
 *   data's fingerprint (also in metrics.json). `--resume` continues on that backend whatever
 *   DENSETRAIN_BACKEND says (bit-identical to an uninterrupted run), refuses another ISA, refuses
 *   other data of the same size, and refuses `--epochs` below the epochs already done.
 * - SIGTERM is handled like Ctrl-C: stop after the batch, checkpoint, INCOMPLETE with the resume
 *   command, exit 143.
 * - Every metadata field of a checkpoint or model file goes through one schema: a file with
 *   valid checksums but a bad field (epoch -3, no dataset, layers as a string, an unknown
 *   version, ...) is refused with exit 2 and one line naming the file and the field.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprintDataset, fingerprintDifference } from '../src/data/fingerprint.js';
import { tryLoadBackend } from '../src/kernels/index.js';
import { loadNativeAddon } from '../src/kernels/native.js';
import { loadModel, MODEL_FILE } from '../src/model/load.js';
import { CHECKPOINT_FILE, readCheckpoint } from '../src/train/checkpoint.js';
import { CheckpointError, decodeSafetensors, encodeSafetensors } from '../src/model/safetensors.js';
import { train } from '../src/train/train.js';
import type { RunRecord } from '../src/train/types.js';
import { collect, ensureBuilt, runCli, spawnCli, writeTinyDataset, type TinyDataset } from './helpers/cli.js';
import { expectOneLine } from './helpers/one-line.js';
import { syntheticDataset } from './helpers/synthetic-data.js';

let tmp: string;
let data: TinyDataset;

beforeAll(() => {
  ensureBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'densetrain-rel-resume-'));
  data = writeTinyDataset(join(tmp, 'tiny'));
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const nativeLoads = tryLoadBackend('native').ok;


function sameBytes(fileA: string, fileB: string): void {
  const a = decodeSafetensors(readFileSync(fileA), fileA).tensors;
  const b = decodeSafetensors(readFileSync(fileB), fileB).tensors;
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [name, ta] of a) {
    const tb = b.get(name)!;
    expect(Buffer.from(tb.data.buffer).equals(Buffer.from(ta.data.buffer)), `${name} differs`).toBe(true);
  }
}

const args = (out: string, epochs = 3): string[] => ['train', '--data', data.dir, '--layers', '64,16,10', '--epochs', String(epochs), '--batch-size', '2', '--patience', '0', '--out', out, '--quiet'];

describe('resume is faithful', () => {
  it.runIf(nativeLoads)('SIGTERM stops like Ctrl-C (exit 143); DENSETRAIN_BACKEND=wasm --resume continues on native, bit-identical', async () => {
    const reference = join(tmp, 'reference');
    const stopped = join(tmp, 'sigterm');
    // 30 epochs: the run must still be going when SIGTERM (sent at the first epoch line) arrives.
    const referenceRun = runCli(args(reference, 30), { cwd: tmp, timeoutMs: 110_000, env: { DENSETRAIN_BACKEND: undefined } });
    const child = spawnCli(args(stopped, 30), { cwd: tmp, env: { DENSETRAIN_BACKEND: undefined } });
    let seen = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      const before = seen;
      seen += chunk.toString();
      if (!/^epoch +1\//m.test(before) && /^epoch +1\//m.test(seen)) child.kill('SIGTERM');
    });
    const term = await collect(child, 110_000);
    expect(term.code, term.stderr).toBe(143);
    expect(term.stderr).toMatch(/terminated \(SIGTERM\); stopping after the current batch/);
    expect(term.stdout).toMatch(/continue with: densetrain train --resume /);
    expect(readFileSync(join(stopped, 'INCOMPLETE'), 'utf8')).toMatch(/--resume/);
    const checkpoint = await readCheckpoint(stopped);
    expect(checkpoint.state.ranOn?.backend).toBe('native');
    expect(checkpoint.state.ranOn?.isa).toBe(loadNativeAddon().isa());
    expect(checkpoint.state.ranOn?.threads).toBeGreaterThanOrEqual(1);
    expect(checkpoint.config.backend).toBe('auto');

    const resumed = await runCli(['train', '--resume', stopped, '--quiet'], { cwd: tmp, timeoutMs: 110_000, env: { DENSETRAIN_BACKEND: 'wasm' } });
    expect(resumed.code, resumed.stderr).toBe(0);
    // --quiet: the backend is in the summary table.
    expect(resumed.stdout).toMatch(/^│ backend +│ native /m);
    expect(resumed.stderr).toMatch(/continuing on native, the backend the run was trained on \(DENSETRAIN_BACKEND=wasm ignored/);
    expect((await referenceRun).code).toBe(0);
    sameBytes(join(reference, MODEL_FILE), join(stopped, MODEL_FILE));
    sameBytes(join(reference, CHECKPOINT_FILE), join(stopped, CHECKPOINT_FILE));
    const record = JSON.parse(readFileSync(join(stopped, 'metrics.json'), 'utf8')) as RunRecord;
    expect(record.backend.backend).toBe('native');
    expect(record.dataset.fingerprint?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(record.epochs).toHaveLength(30);

    // --backend wasm chooses another backend on purpose: allowed.
    const other = await runCli(['train', '--resume', stopped, '--epochs', '31', '--backend', 'wasm', '--quiet'], { cwd: tmp, timeoutMs: 110_000 });
    expect(other.code, other.stderr).toBe(0);
    expect(other.stdout).toMatch(/^│ backend +│ wasm /m);
    expect((await readCheckpoint(stopped)).state.ranOn?.backend).toBe('wasm');
  });

  it.runIf(nativeLoads && loadNativeAddon().supportedIsas().length > 1)('another ISA is refused with the reason', async () => {
    const out = join(tmp, 'isa');
    expect((await runCli(args(out, 1), { cwd: tmp, timeoutMs: 60_000, env: { DENSETRAIN_BACKEND: 'native' } })).code).toBe(0);
    const lower = loadNativeAddon().supportedIsas()[1]!;
    const result = await runCli(['train', '--resume', out, '--epochs', '2'], { cwd: tmp, timeoutMs: 60_000, env: { DENSETRAIN_ISA: lower } });
    expectOneLine(result, join(out, CHECKPOINT_FILE), new RegExp(`trained on native \\(${loadNativeAddon().isa()}\\) and would continue on native \\(${lower}\\)`));
  });

  it('other data of the same size is refused; --epochs below the epochs done is refused naming --epochs', async () => {
    const out = join(tmp, 'data-change');
    expect((await runCli(args(out, 2), { cwd: tmp, timeoutMs: 60_000, env: { DENSETRAIN_BACKEND: 'reference' } })).code).toBe(0);
    const other = writeTinyDataset(join(tmp, 'tiny-other'), { seed: 8 });
    const changed = await runCli(['train', '--resume', out, '--data', other.dir, '--epochs', '3'], { cwd: tmp, timeoutMs: 60_000 });
    expectOneLine(changed, join(out, CHECKPOINT_FILE), /was trained on different data .*same sizes .* but different pixel or label bytes/);
    const fewer = await runCli(['train', '--resume', out, '--epochs', '1'], { cwd: tmp, timeoutMs: 60_000 });
    expectOneLine(fewer, '--epochs 1', /fewer than the 2 epochs already completed/);
    const record = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as RunRecord;
    expect(record.config.epochs).toBe(2);
    // The same data under another path is the same data.
    const copy = writeTinyDataset(join(tmp, 'tiny-copy'));
    const same = await runCli(['train', '--resume', out, '--data', copy.dir, '--epochs', '3', '--quiet'], { cwd: tmp, timeoutMs: 60_000 });
    expect(same.code, same.stderr).toBe(0);
  });

  it('the library refuses another backend unless asked, and fingerprints tell data apart', async () => {
    const dataset = syntheticDataset({ train: 80, test: 20 });
    const out = join(tmp, 'library');
    const first = await train({ layers: [64, 8, 4], epochs: 1, batchSize: 8, backend: 'reference' }, { dataset, outDir: out });
    first.model.dispose();
    const wasm = tryLoadBackend('wasm');
    if (wasm.ok) {
      await expect(train({ epochs: 2 }, { dataset, outDir: out, resumeFrom: out, kernels: wasm.kernels })).rejects.toThrow(
        /trained on reference \(js\) and would continue on wasm \(simd128\)/,
      );
      const allowed = await train({ epochs: 2 }, { dataset, outDir: out, resumeFrom: out, kernels: wasm.kernels, allowBackendChange: true });
      allowed.model.dispose();
    }
    const a = fingerprintDataset(dataset);
    expect(fingerprintDifference(a, fingerprintDataset(syntheticDataset({ train: 80, test: 20 })))).toBeNull();
    const flipped = syntheticDataset({ train: 80, test: 20 });
    flipped.test.images[5] ^= 1;
    expect(fingerprintDifference(a, fingerprintDataset(flipped))).toMatch(/different pixel or label bytes/);
    expect(fingerprintDifference(a, fingerprintDataset(syntheticDataset({ train: 81, test: 20 })))).toMatch(/80 train .* vs 81 train/);
  });
});

// ---------------------------------------------------------------------------------------------
// Metadata: one schema, every field.

/** Rewrites a safetensors file's metadata (checksums recomputed: the file is valid as a file). */
function rewriteMetadata(from: string, to: string, change: (meta: Record<string, string>) => void): void {
  const { tensors, metadata } = decodeSafetensors(readFileSync(from), from);
  const meta = { ...metadata };
  delete meta['sha256'];
  delete meta['header_sha256'];
  change(meta);
  writeFileSync(to, encodeSafetensors(tensors, meta));
}

function editJson(meta: Record<string, string>, key: string, edit: (value: Record<string, unknown>) => void): void {
  const value = JSON.parse(meta[key]!) as Record<string, unknown>;
  edit(value);
  meta[key] = JSON.stringify(value);
}

describe.concurrent('metadata is validated, not trusted: exit 2, one line naming the file and the field', () => {
  let run: string;
  beforeAll(async () => {
    run = join(tmp, 'meta-run');
    const result = await runCli(args(run, 2), { cwd: tmp, timeoutMs: 60_000, env: { DENSETRAIN_BACKEND: 'reference' } });
    expect(result.code, result.stderr).toBe(0);
  });

  const CHECKPOINT_CASES: [string, (m: Record<string, string>) => void, RegExp][] = [
    ['training.epoch -3', (m) => editJson(m, 'training', (t) => (t['epoch'] = -3)), /metadata field training\.epoch must be >= 0, got -3/],
    ['training.dataset missing', (m) => editJson(m, 'training', (t) => delete t['dataset']), /metadata field training\.dataset must be an object/],
    ['architecture.layers a string', (m) => editJson(m, 'architecture', (a) => (a['layers'] = '64,16,10')), /metadata field architecture\.layers must be an array, got "64,16,10"/],
    ['config.lr -1', (m) => editJson(m, 'config', (c) => (c['lr'] = -1)), /metadata field config\.lr must be > 0, got -1/],
    ['training.bestEpoch after the epochs done', (m) => editJson(m, 'training', (t) => (t['bestEpoch'] = 9)), /metadata field training\.bestEpoch is 9, after the 2 completed epochs/],
    ['training.rngEpochStart all zero', (m) => editJson(m, 'training', (t) => (t['rngEpochStart'] = [0, 0, 0, 0])), /metadata field training\.rngEpochStart/],
    ['scaling with std 0', (m) => (m['scaling'] = JSON.stringify({ kind: 'standardize', mean: 0.1, std: 0 })), /metadata field scaling/],
    ['an unknown version', (m) => (m['version'] = '7'), /metadata field version: checkpoint version "7" is not supported/],
    ['training not JSON', (m) => (m['training'] = '{epoch: 1'), /metadata "training" is not valid JSON/],
  ];
  it.each(CHECKPOINT_CASES)('checkpoint with %s: --resume refused', async (name, change, problem) => {
    const dir = join(tmp, `meta-${name.replace(/\W+/g, '-')}`);
    rmSync(dir, { recursive: true, force: true });
    const { cpSync } = await import('node:fs');
    cpSync(run, dir, { recursive: true });
    rewriteMetadata(join(run, CHECKPOINT_FILE), join(dir, CHECKPOINT_FILE), change);
    const result = await runCli(['train', '--resume', dir, '--epochs', '3'], { cwd: tmp, timeoutMs: 60_000 });
    expectOneLine(result, join(dir, CHECKPOINT_FILE), problem);
    await expect(readCheckpoint(dir)).rejects.toThrow(CheckpointError);
  });

  const MODEL_CASES: [string, (m: Record<string, string>) => void, RegExp][] = [
    ['an unknown version', (m) => (m['version'] = '2'), /metadata field version: model file version "2" is not supported/],
    ['architecture.activation unknown', (m) => editJson(m, 'architecture', (a) => (a['activation'] = 'swish')), /metadata field architecture\.activation must be/],
    ['classNames of the wrong length', (m) => (m['classNames'] = JSON.stringify(['a', 'b'])), /metadata field classNames holds 2 names for 10 classes/],
    ['architecture.alpha a string', (m) => editJson(m, 'architecture', (a) => (a['alpha'] = 'x')), /metadata field architecture\.alpha must be a finite number, got "x"/],
  ];
  it.each(MODEL_CASES)('model file with %s: eval --model and loadModel refuse it', async (name, change, problem) => {
    const file = join(tmp, `model-${name.replace(/\W+/g, '-')}.safetensors`);
    rewriteMetadata(join(run, MODEL_FILE), file, change);
    const result = await runCli(['eval', '--model', file, '--data', data.dir], { cwd: tmp, timeoutMs: 60_000, env: { DENSETRAIN_BACKEND: 'reference' } });
    expectOneLine(result, file, problem);
    await expect(loadModel(file)).rejects.toThrow(problem);
  });

  it('the unchanged files still load (the rewrite itself is not what is refused)', async () => {
    const file = join(tmp, 'model-unchanged.safetensors');
    rewriteMetadata(join(run, MODEL_FILE), file, () => undefined);
    (await loadModel(file)).dispose();
    expect(existsSync(join(run, CHECKPOINT_FILE))).toBe(true);
    expect((await readCheckpoint(run)).state.epoch).toBe(2);
  });
});
