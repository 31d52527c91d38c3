/**
 * safetensors files: our writer against the format spec (parsed by hand here), corruption
 * detection, and loading plain PyTorch-layout state dicts written byte by byte.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReferenceKernels } from '../src/kernels/reference.js';
import { Mlp } from '../src/model/mlp.js';
import { Rng } from '../src/rng.js';
import { loadModel } from '../src/model/load.js';
import { decodeSafetensors, encodeSafetensors } from '../src/model/safetensors.js';

const kernels = createReferenceKernels();
let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'densetrain-ckpt-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A safetensors file assembled by hand, the way PyTorch's safetensors.torch.save_file lays it out. */
function handWritten(tensors: [string, number[], number[]][], dtype = 'F32', metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata) header['__metadata__'] = metadata;
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const [name, shape, values] of tensors) {
    const bytes = Buffer.alloc(values.length * 4);
    values.forEach((v, i) => bytes.writeFloatLE(v, i * 4));
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes.length] };
    offset += bytes.length;
    chunks.push(bytes);
  }
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([prefix, json, ...chunks]);
}

describe('safetensors writer', () => {
  it('writes the spec layout: u64 LE header length, space-padded JSON, 8-byte aligned data, metadata strings', () => {
    const bytes = encodeSafetensors(
      [
        ['a', { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
        ['b', { shape: [1], data: Float32Array.from([-0.5]) }],
      ],
      { note: 'hello' },
    );
    const n = Number(bytes.readBigUInt64LE(0));
    expect((8 + n) % 8).toBe(0);
    const headerText = bytes.subarray(8, 8 + n).toString('utf8');
    expect(headerText.trimEnd().length).toBeLessThanOrEqual(n);
    expect(/^ *$/.test(headerText.slice(headerText.trimEnd().length))).toBe(true);
    const header = JSON.parse(headerText);
    expect(header.a).toEqual({ dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
    expect(header.b).toEqual({ dtype: 'F32', shape: [1], data_offsets: [24, 28] });
    expect(header.__metadata__.note).toBe('hello');
    expect(header.__metadata__.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(bytes.length).toBe(8 + n + 28);
    expect(bytes.readFloatLE(8 + n + 4 * 5)).toBe(6);
    expect(bytes.readFloatLE(8 + n + 24)).toBe(-0.5);
    const back = decodeSafetensors(bytes, 'x.safetensors');
    expect(Array.from(back.tensors.get('a')!.data)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(back.metadata['note']).toBe('hello');
  });

  it('a flipped byte in the tensor data is a checksum error naming the file', async () => {
    const bytes = encodeSafetensors([['w', { shape: [4], data: Float32Array.from([1, 2, 3, 4]) }]]);
    bytes[bytes.length - 3]! ^= 0x10;
    const file = join(dir, 'corrupt.safetensors');
    await writeFile(file, bytes);
    await expect(loadModel(file, { kernels })).rejects.toThrow(new RegExp(`${file.replace(/[.]/g, '\\.')}: checksum mismatch`));
  });

  it('rejects truncated files, bad headers and other dtypes with clear messages', () => {
    const good = encodeSafetensors([['w', { shape: [4], data: Float32Array.from([1, 2, 3, 4]) }]]);
    expect(() => decodeSafetensors(good.subarray(0, good.length - 4), 'f')).toThrow(/f: tensor w: data_offsets .* fall outside/);
    expect(() => decodeSafetensors(good.subarray(0, 5), 'f')).toThrow(/f: not a safetensors file/);
    const garbage = Buffer.from(good);
    garbage.writeBigUInt64LE(1n << 40n, 0);
    expect(() => decodeSafetensors(garbage, 'f')).toThrow(/header length/);
    expect(() => decodeSafetensors(handWritten([['w', [2], [1, 2]]], 'F64'), 'f')).toThrow(/dtype "F64".*F32 only/);
  });
});

describe('loadModel', () => {
  // A 3 -> 4 -> 2 net in nn.Linear layout, written with no metadata.
  const w0 = [0.1, -0.2, 0.3, 0.4, 0.5, -0.6, 0.7, 0.8, -0.9, 1.0, 1.1, -1.2];
  const b0 = [0.01, 0.02, -0.03, 0.04];
  const w1 = [0.5, -0.5, 0.25, 0.75, -1, 1, 0.3, -0.3];
  const b1 = [0.1, -0.1];
  const x = Float32Array.from([1, 2, 3, -1, 0.5, 2]);

  function expected(activation: 'relu' | 'tanh'): Float32Array {
    const m = new Mlp({ layers: [3, 4, 2], activation, alpha: 0 }, { kernels, capacity: 2 });
    m.setParameters({ 'layers.0.weight': w0, 'layers.0.bias': b0, 'layers.1.weight': w1, 'layers.1.bias': b1 });
    const p = m.predict(x, 2);
    m.dispose();
    return p;
  }

  it('loads a PyTorch-layout state dict (F32, no metadata), architecture from shapes, activation from options', async () => {
    const file = join(dir, 'torch.safetensors');
    await writeFile(file, handWritten([['layers.0.weight', [4, 3], w0], ['layers.0.bias', [4], b0], ['layers.1.weight', [2, 4], w1], ['layers.1.bias', [2], b1]]));
    const model = await loadModel(file, { activation: 'tanh', kernels });
    try {
      expect(model.architecture).toEqual({ layers: [3, 4, 2], activation: 'tanh', alpha: 0.01 });
      expect(Array.from(model.predict(x, 2))).toEqual(Array.from(expected('tanh')));
      expect(Array.from(model.getParameters()['layers.0.weight']!)).toEqual(Array.from(Float32Array.from(w0)));
    } finally {
      model.dispose();
    }
    await expect(loadModel(file, { kernels })).rejects.toThrow(/hidden activation is unknown; pass \{ activation/);
  });

  it('accepts nn.Sequential numbering (layers.0, layers.2) and rejects inconsistent shapes', async () => {
    const seq = join(dir, 'seq.safetensors');
    await writeFile(seq, handWritten([['layers.0.weight', [4, 3], w0], ['layers.0.bias', [4], b0], ['layers.2.weight', [2, 4], w1], ['layers.2.bias', [2], b1]]));
    const model = await loadModel(seq, { activation: 'relu', kernels });
    expect(Array.from(model.predict(x, 2))).toEqual(Array.from(expected('relu')));
    model.dispose();

    const bad = join(dir, 'bad.safetensors');
    await writeFile(bad, handWritten([['layers.0.weight', [4, 3], w0], ['layers.0.bias', [4], b0], ['layers.1.weight', [2, 5], [...w1, 0, 0]], ['layers.1.bias', [2], b1]]));
    await expect(loadModel(bad, { activation: 'relu', kernels })).rejects.toThrow(/layers\.1\.weight takes 5 inputs but the previous layer has 4 outputs/);
    const noBias = join(dir, 'nobias.safetensors');
    await writeFile(noBias, handWritten([['layers.0.weight', [2, 3], [1, 2, 3, 4, 5, 6]]]));
    await expect(loadModel(noBias, { activation: 'relu', kernels })).rejects.toThrow(/layers\.0\.bias is missing/);
    const extra = join(dir, 'extra.safetensors');
    await writeFile(extra, handWritten([['layers.0.weight', [2, 3], [1, 2, 3, 4, 5, 6]], ['layers.0.bias', [2], [0, 0]], ['bn.running_mean', [2], [0, 0]]]));
    await expect(loadModel(extra, { activation: 'relu', kernels })).rejects.toThrow(/unexpected tensors bn\.running_mean/);
  });

  it('model.save then loadModel round-trips weights, architecture, scaling and class names', async () => {
    const model = new Mlp({ layers: [5, 6, 3], activation: 'prelu', alpha: 0.2 }, { kernels, capacity: 4, rng: new Rng(9) });
    model.scaling = { kind: 'standardize', mean: 0.13, std: 0.31 };
    model.classNames = ['a', 'b', 'c'];
    model.setParameters({ 'layers.0.prelu_slope': [0.37] });
    const file = join(dir, 'saved.safetensors');
    await model.save(file);
    const loaded = await loadModel(file, { kernels });
    try {
      expect(loaded.architecture).toEqual(model.architecture);
      expect(loaded.scaling).toEqual(model.scaling);
      expect(loaded.classNames).toEqual(['a', 'b', 'c']);
      const a = model.getParameters();
      const b = loaded.getParameters();
      for (const name of model.parameterNames) expect(Array.from(b[name]!)).toEqual(Array.from(a[name]!));
      const input = Float32Array.from({ length: 10 }, (_, i) => Math.sin(i));
      expect(Array.from(loaded.predict(input, 2))).toEqual(Array.from(model.predict(input, 2)));
      await expect(loadModel(file, { kernels, activation: 'relu' })).rejects.toThrow(/trained with activation prelu, not relu/);
      // A byte flipped inside the saved weights is caught.
      const bytes = await readFile(file);
      bytes[bytes.length - 1]! ^= 1;
      await writeFile(file, bytes);
      await expect(loadModel(file, { kernels })).rejects.toThrow(/saved\.safetensors: checksum mismatch/);
    } finally {
      model.dispose();
      loaded.dispose();
    }
  });
});
