/**
 * Reliability, crash safety:
 * - `densetrain train` killed with SIGKILL at a random moment after its first checkpoints, then
 *   `train --resume DIR`, finishes with final weights equal bit for bit to an uninterrupted run
 *   with the same seed on the same backend (every tensor of model.safetensors), on native and
 *   wasm. A temp file left by a write the kill cut short does not disturb the resume.
 * - Checkpoints are written through a temp file, fsync and rename (src/model/safetensors.ts
 *   writeFileAtomic), so the kill never leaves a half-written checkpoint.safetensors.
 * - A corrupted file (one flipped byte anywhere in the header, or in the tensor data) is refused
 *   with an error naming the file, by the reader, by `eval --model` and by `train --resume`.
 */
import { copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tryLoadBackend } from '../src/kernels/index.js';
import { createReferenceKernels } from '../src/kernels/reference.js';
import { MODEL_FILE } from '../src/model/load.js';
import { CHECKPOINT_FILE } from '../src/train/checkpoint.js';
import { CheckpointError, decodeSafetensors } from '../src/model/safetensors.js';
import { train } from '../src/train/train.js';
import type { RunRecord } from '../src/train/types.js';
import { registerMissingBackends } from './helpers/backends.js';
import { collect, ensureBuilt, runCli, spawnCli, writeTinyDataset, type TinyDataset } from './helpers/cli.js';
import { syntheticDataset } from './helpers/synthetic-data.js';

let tmp: string;
let data: TinyDataset;

beforeAll(() => {
  ensureBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'densetrain-rel-crash-'));
  data = writeTinyDataset(join(tmp, 'tiny'));
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function readRecord(dir: string): RunRecord {
  return JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8')) as RunRecord;
}

/** Every tensor of two safetensors files, byte for byte. */
function expectSameTensors(fileA: string, fileB: string): void {
  const a = decodeSafetensors(readFileSync(fileA), fileA).tensors;
  const b = decodeSafetensors(readFileSync(fileB), fileB).tensors;
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [name, ta] of a) {
    const tb = b.get(name)!;
    expect(tb.shape, name).toEqual(ta.shape);
    const bytesA = Buffer.from(ta.data.buffer, ta.data.byteOffset, ta.data.byteLength);
    const bytesB = Buffer.from(tb.data.buffer, tb.data.byteOffset, tb.data.byteLength);
    expect(bytesA.equals(bytesB), `${name} differs between ${fileA} and ${fileB}`).toBe(true);
  }
}

const EPOCHS = 30;
const trainArgs = (backend: string, out: string): string[] => [
  'train', '--data', data.dir, '--layers', '64,32,10', '--epochs', String(EPOCHS), '--batch-size', '2',
  '--patience', '0', '--backend', backend, '--out', out, '--quiet',
];

registerMissingBackends('crash safety');

describe.concurrent('SIGKILL at a random moment, then --resume: bit-identical to an uninterrupted run', () => {
  for (const backend of ['native', 'wasm'] as const) {
    const loads = tryLoadBackend(backend).ok;
    it.skipIf(!loads)(`${backend}`, async () => {
      const reference = join(tmp, `uninterrupted-${backend}`);
      const killed = join(tmp, `killed-${backend}`);
      const referenceRun = runCli(trainArgs(backend, reference), { cwd: tmp, timeoutMs: 110_000 });

      const child = spawnCli(trainArgs(backend, killed), { cwd: tmp });
      const delay = Math.floor(Math.random() * 300);
      let killedAt = '';
      let seen = '';
      child.stderr!.on('data', (chunk: Buffer) => {
        seen += chunk.toString();
        if (killedAt === '' && /^epoch +2\//m.test(seen)) {
          killedAt = 'pending';
          setTimeout(() => {
            killedAt = seen.match(/^epoch +\d+\//gm)?.at(-1) ?? '?';
            child.kill('SIGKILL');
          }, delay);
        }
      });
      const dead = await collect(child, 110_000);
      const context = `killed ${delay} ms after 'epoch 2' (last line seen: ${killedAt})`;
      expect(dead.signal, `${context}; the run must still be going when killed: ${dead.stderr.slice(-300)}`).toBe('SIGKILL');
      expect(existsSync(join(killed, 'INCOMPLETE')), context).toBe(true);
      expect(existsSync(join(killed, CHECKPOINT_FILE)), context).toBe(true);

      // What a kill in the middle of a checkpoint write leaves: a partial temp file. It must not matter.
      const full = readFileSync(join(killed, CHECKPOINT_FILE));
      const leftover = join(killed, `.${CHECKPOINT_FILE}.99999.0badf00d.tmp`);
      writeFileSync(leftover, full.subarray(0, Math.floor(full.length / 3)));

      const resumed = await runCli(['train', '--resume', killed, '--quiet'], { cwd: tmp, timeoutMs: 110_000 });
      expect(resumed.code, `${context}\n${resumed.stderr}`).toBe(0);
      expect(existsSync(join(killed, 'INCOMPLETE'))).toBe(false);

      const uninterrupted = await referenceRun;
      expect(uninterrupted.code, uninterrupted.stderr).toBe(0);
      // model.safetensors holds the best epoch's weights (possibly from before the kill), so the
      // final state is compared too: every tensor of the last checkpoint (weights, optimizer state, best).
      expectSameTensors(join(reference, MODEL_FILE), join(killed, MODEL_FILE));
      expectSameTensors(join(reference, CHECKPOINT_FILE), join(killed, CHECKPOINT_FILE));
      expect(readRecord(killed).backend.backend).toBe(backend);
      const a = readRecord(reference);
      const b = readRecord(killed);
      expect(b.stopReason).toBe('completed');
      expect(b.epochs.map((e) => [e.trainLoss, e.valLoss, e.valAccuracy])).toEqual(a.epochs.map((e) => [e.trainLoss, e.valLoss, e.valAccuracy]));
      expect(b.batches).toEqual(a.batches);
      expect(b.test).toEqual(a.test);
      // The leftover is still only a leftover: nothing read it, nothing replaced the real files with it.
      expect(readdirSync(killed).filter((f) => f.endsWith('.safetensors')).sort()).toEqual([CHECKPOINT_FILE, MODEL_FILE]);
    });
  }
});

describe('checkpoint writes are atomic', () => {
  it('writeFileAtomic writes a temp file, fsyncs it, then renames it over the target', () => {
    // A structural check of the code path every checkpoint and model file goes through.
    const source = readFileSync(new URL('../src/model/safetensors.ts', import.meta.url), 'utf8');
    const body = source.slice(source.indexOf('export async function writeFileAtomic'));
    const order = ['.tmp`', 'writeFile(bytes)', 'handle.sync()', 'rename(temp, path)'].map((s) => body.indexOf(s));
    for (const at of order) expect(at).toBeGreaterThan(-1);
    expect([...order].sort((x, y) => x - y)).toEqual(order);
    expect(source).toMatch(/export async function writeSafetensors[^]*?writeFileAtomic\(path, encodeSafetensors/);
  });
});

describe('corrupted checkpoints and model files are refused, naming the file', () => {
  let checkpointBytes: Buffer;
  let modelBytes: Buffer;
  let runDir: string;

  beforeAll(async () => {
    runDir = join(tmp, 'small-run');
    const { model } = await train(
      { data: 'synthetic', layers: [16, 8, 4], epochs: 2, batchSize: 8, patience: 0, seed: 2 },
      { dataset: syntheticDataset({ train: 64, test: 16, side: 4, classes: 4 }), outDir: runDir, kernels: createReferenceKernels() },
    );
    model.dispose();
    checkpointBytes = readFileSync(join(runDir, CHECKPOINT_FILE));
    modelBytes = readFileSync(join(runDir, MODEL_FILE));
  });

  const headerEnd = (bytes: Buffer): number => 8 + Number(bytes.readBigUInt64LE(0));

  it('every single flipped byte of the prefix and header (3 flip patterns) is refused', () => {
    for (const [label, bytes] of [['checkpoint', checkpointBytes], ['model', modelBytes]] as const) {
      const end = headerEnd(bytes);
      let refused = 0;
      for (let i = 0; i < end; i++) {
        for (const mask of [0x01, 0x20, 0xff]) {
          const copy = Buffer.from(bytes);
          copy[i]! ^= mask;
          const file = `/runs/x/${label}-${i}-${mask}.safetensors`;
          let error: unknown = null;
          try {
            decodeSafetensors(copy, file);
          } catch (e) {
            error = e;
          }
          expect(error, `${label}: byte ${i} ^ 0x${mask.toString(16)} was accepted`).toBeInstanceOf(CheckpointError);
          expect((error as Error).message.startsWith(`${file}: `)).toBe(true);
          refused++;
        }
      }
      expect(refused).toBe(end * 3);
    }
  });

  it('every single flipped byte of the tensor data is a checksum error', () => {
    for (const bytes of [checkpointBytes, modelBytes]) {
      for (let i = headerEnd(bytes); i < bytes.length; i++) {
        const copy = Buffer.from(bytes);
        copy[i]! ^= 1 << (i % 8);
        expect(() => decodeSafetensors(copy, 'f.safetensors'), `byte ${i}`).toThrow(/^f\.safetensors: checksum mismatch: the tensor data is corrupt/);
      }
    }
  });

  it('`eval --model` and `train --resume` refuse a flipped byte (header or data): exit 2, one line naming the file', async () => {
    const cases: [string, string, (bytes: Buffer) => number][] = [
      ['eval-data', MODEL_FILE, (b) => b.length - 5],
      ['eval-header', MODEL_FILE, (b) => Math.floor(headerEnd(b) / 2)],
      ['resume-data', CHECKPOINT_FILE, (b) => b.length - 7],
      ['resume-header', CHECKPOINT_FILE, (b) => headerEnd(b) - 40],
    ];
    await Promise.all(
      cases.map(async ([name, file, position]) => {
        const dir = join(tmp, `corrupt-${name}`);
        cpSync(runDir, dir, { recursive: true });
        copyFileSync(join(runDir, file), join(dir, file));
        const bytes = readFileSync(join(dir, file));
        bytes[position(bytes)]! ^= 0x04;
        writeFileSync(join(dir, file), bytes);
        const args = name.startsWith('eval') ? ['eval', '--model', join(dir, file), '--data', data.dir] : ['train', '--resume', dir, '--epochs', '3'];
        const result = await runCli(args, { cwd: tmp });
        const lines = result.stderr.split('\n').filter((l) => l.trim() !== '');
        expect(result.code, `${name}: ${result.stderr}`).toBe(2);
        expect(lines, name).toHaveLength(1);
        expect(lines[0]).toContain(join(dir, file));
        expect(lines[0]).toMatch(/corrupt/);
        expect(result.stderr).not.toMatch(/\n\s+at /);
      }),
    );
  });
});
