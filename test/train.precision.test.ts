/**
 * --precision bf16 through the model and the trainer: the GEMMs of forward and backward run in
 * bf16 (the weights move differently from fp32, but stay close), everything saved stays float32,
 * the run record and checkpoint say which precision ran, and a backend without bf16 says so and
 * trains in fp32 (bit-identical to an fp32 run). Config and CLI spelling are checked too.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createReferenceKernels } from '../src/kernels/reference.js';
import { loadNativeAddon } from '../src/kernels/native.js';
import type { Kernels } from '../src/kernels/types.js';
import { createModel, Mlp } from '../src/model/mlp.js';
import { readCheckpoint } from '../src/train/checkpoint.js';
import { decodeSafetensors, encodeSafetensors } from '../src/model/safetensors.js';
import { ConfigError, parseConfigPart } from '../src/train/schema.js';
import { train } from '../src/train/train.js';
import type { TrainConfig } from '../src/train/types.js';
import { backendStatus } from './helpers/backends.js';
import { syntheticDataset } from './helpers/synthetic-data.js';

const dataset = syntheticDataset({ train: 400, test: 100 });
const base: Partial<TrainConfig> = {
  data: 'synthetic',
  layers: [64, 24, 4],
  batchSize: 32,
  epochs: 2,
  valSplit: 0.2,
  patience: 0,
  lr: 0.05,
  seed: 5,
};

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

function maxRelativeDrift(a: Record<string, Float32Array>, b: Record<string, Float32Array>): number {
  let num = 0;
  let den = 0;
  for (const name of Object.keys(a)) {
    for (let i = 0; i < a[name]!.length; i++) {
      num += (a[name]![i]! - b[name]![i]!) ** 2;
      den += a[name]![i]! ** 2;
    }
  }
  return Math.sqrt(num / den);
}

const withBf16 = backendStatus().loaded.filter((b) => b.kernels.info().bf16?.available);

describe.each(withBf16.map((b) => [b.name, b.kernels] as const))('training in bf16 on %s', (_name, kernels: Kernels) => {
  it('changes the weights a little (not at all would mean the GEMMs ignored it), records bf16, saves float32', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'densetrain-bf16-'));
    dirs.push(dir);
    const fp32 = await train({ ...base }, { dataset, kernels });
    const bf16 = await train({ ...base, precision: 'bf16' }, { dataset, kernels, outDir: dir });
    try {
      expect(fp32.record.precision).toEqual({ requested: 'fp32', used: 'fp32', detail: 'float32 GEMMs' });
      expect(bf16.record.precision.used).toBe('bf16');
      expect(bf16.record.precision.detail).toBe(kernels.info().bf16!.detail);
      expect(bf16.model.precision).toBe('bf16');
      const drift = maxRelativeDrift(fp32.model.getParameters(), bf16.model.getParameters());
      // bf16 operands (2^-8 relative) over 20 steps: a visible but small relative change.
      expect(drift).toBeGreaterThan(1e-5);
      expect(drift).toBeLessThan(0.05);
      expect(Math.abs(bf16.record.test!.accuracy - fp32.record.test!.accuracy)).toBeLessThanOrEqual(0.05);

      const checkpoint = await readCheckpoint(dir);
      expect(checkpoint.config.precision).toBe('bf16');
      for (const file of ['checkpoint.safetensors', 'model.safetensors']) {
        // The header as written (the decoder itself accepts only F32, so read it raw).
        const bytes = await readFile(join(dir, file));
        const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8')) as Record<string, { dtype?: string }>;
        const dtypes = new Set(Object.entries(header).filter(([k]) => k !== '__metadata__').map(([, v]) => v.dtype));
        expect([...dtypes]).toEqual(['F32']);
      }
    } finally {
      fp32.model.dispose();
      bf16.model.dispose();
    }
  });
});

describe('without bf16 GEMMs', () => {
  const native = backendStatus().loaded.find((b) => b.name === 'native');
  it.runIf(native !== undefined)('a run asking for bf16 says why and trains in fp32, bit for bit', async () => {
    const addon = loadNativeAddon();
    const before = addon.isa();
    const kernels = native!.kernels;
    addon.setIsa('avx2');
    try {
      const asked = await train({ ...base, precision: 'bf16' }, { dataset, kernels });
      const plain = await train({ ...base }, { dataset, kernels });
      try {
        expect(asked.record.precision.requested).toBe('bf16');
        expect(asked.record.precision.used).toBe('fp32');
        expect(asked.record.precision.detail).toMatch(/bf16 is not available on the native backend \(.*AVX512-BF16.*\); training in fp32/);
        const a = asked.model.getParameters();
        const b = plain.model.getParameters();
        for (const name of Object.keys(a)) expect(Buffer.from(a[name]!.buffer).equals(Buffer.from(b[name]!.buffer)), name).toBe(true);
        expect(() => createModel({ layers: [4, 3], activation: 'relu', alpha: 0 }, { kernels, precision: 'bf16' })).toThrow(/precision 'bf16' is not available on the native backend/);
      } finally {
        asked.model.dispose();
        plain.model.dispose();
      }
    } finally {
      addon.setIsa(before);
    }
  });
});

describe('checkpoints', () => {
  it('written before --precision existed resume as fp32; a different precision on resume is refused', async () => {
    const kernels = createReferenceKernels();
    const dir = await mkdtemp(join(tmpdir(), 'densetrain-bf16-resume-'));
    dirs.push(dir);
    const first = await train({ ...base, epochs: 1 }, { dataset, kernels, outDir: dir });
    first.model.dispose();
    const file = join(dir, 'checkpoint.safetensors');
    const raw = decodeSafetensors(await readFile(file), file);
    const { precision, ...oldConfig } = JSON.parse(raw.metadata['config']!) as TrainConfig;
    expect(precision).toBe('fp32');
    await writeFile(file, encodeSafetensors(raw.tensors, { ...raw.metadata, config: JSON.stringify(oldConfig) }));
    expect((await readCheckpoint(dir)).config.precision).toBe('fp32');
    await expect(train({ epochs: 2, precision: 'bf16' }, { dataset, kernels, resumeFrom: dir })).rejects.toThrow(/precision is "fp32" in .*, cannot resume with "bf16"/);
    const resumed = await train({ epochs: 2 }, { dataset, kernels, resumeFrom: dir });
    try {
      expect(resumed.record.precision.used).toBe('fp32');
      expect(resumed.record.epochs).toHaveLength(2);
    } finally {
      resumed.model.dispose();
    }
  });
});

describe('precision option', () => {
  it('is part of the config schema (fp32 | bf16), named as the user wrote it', () => {
    expect(parseConfigPart({ precision: 'bf16' }, { kind: 'file', path: 'c.json' })).toEqual({ precision: 'bf16' });
    expect(() => parseConfigPart({ precision: 'fp16' }, { kind: 'cli' })).toThrow(ConfigError);
    expect(() => parseConfigPart({ precision: 'fp16' }, { kind: 'cli' })).toThrow(/--precision must be one of fp32, bf16; got "fp16"/);
  });

  it('is a model option; reference models in bf16 and fp32 give different logits', () => {
    const kernels = createReferenceKernels();
    const arch = { layers: [8, 6, 3], activation: 'tanh' as const, alpha: 0 };
    const m32 = createModel(arch, { kernels, seed: 2 }) as Mlp;
    const m16 = createModel(arch, { kernels, seed: 2, precision: 'bf16' }) as Mlp;
    const x = Float32Array.from({ length: 16 }, (_, i) => Math.sin(i * 1.7));
    const l32 = m32.logits(x, 2);
    const l16 = m16.logits(x, 2);
    expect(m16.precision).toBe('bf16');
    expect(Array.from(l16)).not.toEqual(Array.from(l32));
    for (let i = 0; i < l32.length; i++) expect(Math.abs(l16[i]! - l32[i]!)).toBeLessThan(0.05);
    expect(() => createModel(arch, { kernels, precision: 'half' as never })).toThrow(/precision must be 'fp32' or 'bf16'/);
    m32.dispose();
    m16.dispose();
  });
});
