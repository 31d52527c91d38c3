/**
 * The real command end to end: info, data list, train on a tiny generated dataset, eval of the
 * model it wrote, and Ctrl-C (SIGINT) during a long run followed by --resume.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../src/train/types.js';
import { tryLoadBackend } from '../src/kernels/index.js';
import { collect, ensureBuilt, runCli, signalWhenSeen, spawnCli, writeTinyDataset, type TinyDataset } from './helpers/cli.js';

let tmp: string;
let data: TinyDataset;

beforeAll(() => {
  ensureBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'densetrain-cli-train-'));
  data = writeTinyDataset(join(tmp, 'tiny'));
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const readRecord = (dir: string): RunRecord => JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8')) as RunRecord;

describe.concurrent('densetrain', () => {
  it('info lists every backend, the one auto picks, versions and data', async () => {
    const result = await runCli(['info']);
    expect(result.code, result.stderr).toBe(0);
    for (const name of ['native', 'wasm', 'reference']) expect(result.stdout).toMatch(new RegExp(`^  ${name} +(available  .+|unavailable: .+)$`, 'm'));
    expect(result.stdout).toMatch(/^  reference +available/m);
    expect(result.stdout).toMatch(/^auto picks: (native|wasm|reference) \(/m);
    expect(result.stdout).toContain(`Node ${process.version}`);
    expect(result.stdout).toMatch(/^densetrain \d+\.\d+\.\d+/);
    expect(result.stdout).toMatch(/^  mnist-sample +available/m);
    const json = await runCli(['info', '--json']);
    const parsed = JSON.parse(json.stdout) as { backends: { name: string; available: boolean }[] };
    expect(parsed.backends.map((b) => b.name)).toEqual(['native', 'wasm', 'reference']);
  });

  it('train --precision bf16 names what runs it in the header; without bf16 GEMMs it says why on stderr and trains in fp32', async () => {
    const out = join(tmp, 'run-bf16');
    const args = ['train', '--data', data.dir, '--layers', '64,16,10', '--epochs', '1', '--batch-size', '16', '--precision', 'bf16', '--backend', 'wasm'];
    const result = await runCli([...args, '--out', out], { cwd: tmp });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^precision: bf16 \(simd128: operands rounded to bfloat16/m);
    expect(readRecord(out).precision).toMatchObject({ requested: 'bf16', used: 'bf16' });
    expect(readRecord(out).config.precision).toBe('bf16');
    const native = tryLoadBackend('native');
    if (native.ok) {
      const fallback = join(tmp, 'run-bf16-avx2');
      const r = await runCli([...args.slice(0, -2), '--backend', 'native', '--out', fallback], { cwd: tmp, env: { DENSETRAIN_ISA: 'avx2' } });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/^densetrain: --precision bf16: bf16 is not available on the native backend \(.*AVX512-BF16.*\); training in fp32$/m);
      expect(r.stdout).toMatch(/^precision: fp32: bf16 is not available/m);
      expect(readRecord(fallback).precision).toMatchObject({ requested: 'bf16', used: 'fp32' });
    }
    const bad = await runCli(['train', '--data', data.dir, '--precision', 'fp16', '--out', join(tmp, 'never')], { cwd: tmp });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--precision must be one of fp32, bf16; got "fp16"/);
  });

  it('data list shows the named datasets', async () => {
    const result = await runCli(['data', 'list']);
    expect(result.code, result.stderr).toBe(0);
    for (const name of ['mnist-sample', 'mnist', 'fashion-mnist']) expect(result.stdout).toMatch(new RegExp(`^${name} +(available|not found)`, 'm'));
  });

  it('train writes a complete run folder; eval reproduces its test accuracy', async () => {
    const out = join(tmp, 'run');
    const config = join(tmp, 'config.json');
    // The file's epochs (5) is overridden by the flag (2); its lr is kept.
    writeFileSync(config, JSON.stringify({ epochs: 5, lr: 0.01, optimizer: 'adam' }));
    const result = await runCli(
      ['train', '--data', data.dir, '--layers', '64,16,10', '--config', config, '--epochs', '2', '--batch-size', '16', '--out', out],
      { cwd: tmp },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.split('\n')[0]).toMatch(/^backend: (native|wasm|reference) \(/);
    expect(result.stderr).toMatch(/^epoch 1\/2 +loss \d/m);
    expect(result.stderr).toMatch(/^epoch 2\/2 +loss \d/m);
    for (const f of ['metrics.json', 'model.safetensors', 'report.html']) expect(existsSync(join(out, f)), f).toBe(true);
    expect(existsSync(join(out, 'INCOMPLETE')), 'a finished run is not marked incomplete').toBe(false);
    const record = readRecord(out);
    expect(record.stopReason).toBe('completed');
    expect(record.epochs).toHaveLength(2);
    expect(record.config.epochs).toBe(2);
    expect(record.config.lr).toBe(0.01);
    expect(record.config.layers).toEqual([64, 16, 10]);
    expect(record.test?.count).toBe(data.test);
    const testPct = `${((record.test?.accuracy ?? NaN) * 100).toFixed(2)}%`;
    expect(result.stdout).toMatch(new RegExp(`test +│ +${record.test!.loss.toFixed(4)} +│ +${testPct.replace('.', '\\.')}`));
    expect(result.stdout).toMatch(/stop reason +│ +completed/);
    expect(result.stdout).toContain('true \\ predicted');
    expect(result.stdout).toContain(`run folder: ${out}`);
    // The confusion table has one line per class: a rule under its header, none between rows.
    const lines = result.stdout.split('\n');
    const confusionTop = lines.findIndex((l) => l.includes('true \\ predicted')) - 1;
    const confusionEnd = lines.findIndex((l, i) => i > confusionTop && l.startsWith('└'));
    expect(confusionEnd - confusionTop + 1).toBe(data.classes + 4);

    const predictions = join(tmp, 'predictions.json');
    const evaluated = await runCli(['eval', '--model', join(out, 'model.safetensors'), '--data', data.dir, '--predictions', predictions]);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    expect(evaluated.stdout).toMatch(new RegExp(`test accuracy +│ +${testPct.replace('.', '\\.')}`));
    expect(evaluated.stdout).toContain('true \\ predicted');
    const rows = JSON.parse(readFileSync(predictions, 'utf8')) as { index: number; label: number; predicted: number; probs: number[] }[];
    expect(rows).toHaveLength(data.test);
    let correct = 0;
    rows.forEach((row, i) => {
      expect(row.index).toBe(i);
      expect(row.label).toBe(i % data.classes); // the fixture's labels
      expect(row.probs).toHaveLength(data.classes);
      expect(row.probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
      expect(row.predicted).toBe(row.probs.indexOf(Math.max(...row.probs)));
      if (row.predicted === row.label) correct++;
    });
    expect(correct / rows.length).toBeCloseTo(record.test!.accuracy, 10);

    // The same model on data of another shape is a usage error naming both sizes.
    const other = writeTinyDataset(join(tmp, 'six'), { side: 6, train: 20, test: 10 });
    const mismatch = await runCli(['eval', '--model', out, '--data', other.dir]);
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr.trim()).toMatch(/^densetrain: --model takes 64 inputs but --data .* has 36 pixels per image \(6x6\)$/);

    // The same images and class count under other class names (a folder named like Fashion-MNIST
    // gets its class names): eval refuses in one line instead of printing a meaningless accuracy.
    const renamed = writeTinyDataset(join(tmp, 'fashion-tiny'));
    const otherClasses = await runCli(['eval', '--model', out, '--data', renamed.dir]);
    expect(otherClasses.code).toBe(2);
    expect(otherClasses.stderr.trim()).toMatch(/^densetrain: --model was trained on the classes 0, 1, 2, 3, 4, 5, \.\.\. \(10 in all\) but --data .*fashion-tiny has T-shirt\/top, Trouser, .*; evaluate it on data with its classes$/);
    expect(otherClasses.stdout).not.toMatch(/test accuracy/);
  });

  it('train --quiet prints one line per epoch and the final summary only', async () => {
    const out = join(tmp, 'run-quiet');
    const result = await runCli(['train', '--data', data.dir, '--layers', '64,16,10', '--epochs', '3', '--batch-size', '16', '--quiet', '--out', out], { cwd: tmp });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr.trim().split('\n').map((l) => l.replace(/ .*/, ''))).toEqual(['epoch', 'epoch', 'epoch']);
    const record = readRecord(out);
    const testPct = `${((record.test?.accuracy ?? NaN) * 100).toFixed(2)}%`;
    expect(result.stdout).toContain(testPct);
    expect(result.stdout).toMatch(/stop reason +│ +completed/);
    expect(result.stdout).toContain(`report: ${join(out, 'report.html')}`);
    for (const noise of ['backend:', 'data:', 'run folder:', 'precision:', 'true \\ predicted', 'precision │ recall']) expect(result.stdout).not.toContain(noise);
    // The scores (7 lines) and run (8 lines) tables and the report line.
    expect(result.stdout.trim().split('\n')).toHaveLength(16);
  });

  it('Ctrl-C stops after the batch, keeps a checkpoint, exits 130; --resume finishes the run', async () => {
    const out = join(tmp, 'interrupted');
    const child = spawnCli(
      ['train', '--data', data.dir, '--layers', '64,16,10', '--epochs', '100000', '--patience', '0', '--batch-size', '4', '--out', out],
      { cwd: tmp },
    );
    const sent = signalWhenSeen(child, /epoch +2\/100000/);
    const result = await collect(child);
    expect(sent(), `never saw epoch 2: ${result.stderr}`).toBe(true);
    expect(result.code, result.stderr).toBe(130);
    expect(result.stderr).toContain('interrupted');
    expect(existsSync(join(out, 'checkpoint.safetensors'))).toBe(true);
    expect(existsSync(join(out, 'INCOMPLETE')), 'an interrupted run is marked incomplete').toBe(true);
    const record = readRecord(out);
    expect(record.stopReason).toBe('interrupted');
    expect(result.stdout).toContain(`densetrain train --resume ${out}`);

    // Only some options may change on resume; the refusal names the flag.
    const refused = await runCli(['train', '--resume', out, '--lr', '0.5'], { cwd: tmp });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^densetrain: --lr 0\.5 differs from the run being resumed/);

    const target = record.epochs.length + 1;
    const resumed = await runCli(['train', '--resume', out, '--epochs', String(target)], { cwd: tmp });
    expect(resumed.code, resumed.stderr).toBe(0);
    const finished = readRecord(out);
    expect(finished.stopReason).toBe('completed');
    expect(finished.epochs).toHaveLength(target);
    expect(existsSync(join(out, 'INCOMPLETE'))).toBe(false);
    expect(existsSync(join(out, 'report.html'))).toBe(true);
  });
});
