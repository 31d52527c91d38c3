/**
 * The relaxed-SIMD build of the wasm kernels (dist/wasm/densetrain-relaxed.wasm, f32x4.relaxed_madd
 * in the GEMM micro-kernel): it ships beside the plain SIMD128 build, is loaded exactly when the
 * runtime validates it, and then (in a child process with V8's relaxed-SIMD flag where Node needs
 * it) reports itself, keeps every GEMM within the float32 error bound of a float64 product,
 * gives the same bits at 1 and 2 threads, and trains a model like the plain build does.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../src/kernels/paths.js';
import { WA } from '../src/kernels/wasm-api.js';
import { preferredWasmModulePath, wasmModulePath, wasmRelaxedModulePath } from '../src/kernels/wasm.js';

const relaxedHere = WA.validate(readFileSync(wasmRelaxedModulePath()));
const dist = (p: string): string => JSON.stringify(join(packageRoot(), 'dist', 'src', p));

/** Runs `code` (an ES module) in a child whose runtime has relaxed SIMD on. */
function withRelaxedSimd(code: string): { status: number | null; stdout: string; stderr: string } {
  const flags = relaxedHere ? [] : ['--experimental-wasm-relaxed-simd'];
  return spawnSync(process.execPath, [...flags, '--input-type=module', '-e', code], { encoding: 'utf8', timeout: 120_000 });
}

describe('wasm relaxed-SIMD build', () => {
  it('ships beside the plain build and is preferred exactly when this runtime validates it', () => {
    expect(existsSync(wasmModulePath())).toBe(true);
    expect(existsSync(wasmRelaxedModulePath())).toBe(true);
    expect(preferredWasmModulePath()).toBe(relaxedHere ? wasmRelaxedModulePath() : wasmModulePath());
  });

  it('with relaxed SIMD on: reports simd128-relaxed, GEMMs within the float32 bound, same bits at 1 and 2 threads, trains like the plain build', () => {
    const r = withRelaxedSimd(`
      const { createWasmBackend, wasmModulePath } = await import(${dist('kernels/wasm.js')});
      const { Mlp } = await import(${dist('model/mlp.js')});
      const { Rng } = await import(${dist('rng.js')});
      const relaxed1 = createWasmBackend(undefined, 1);
      const relaxed2 = createWasmBackend(undefined, 2);
      const plain = createWasmBackend(wasmModulePath(), 1);
      let seed = 5;
      const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
      const worst = [];
      const identical = [];
      const run = (k, m, n, kk, ta, tb, a, b) => {
        const [A, B, C] = [k.alloc(m * kk), k.alloc(kk * n), k.alloc(m * n)];
        A.data.set(a); B.data.set(b);
        k.gemm(ta, tb, m, n, kk, 1, A, B, 0, C);
        return C.data.slice();
      };
      for (const [m, n, kk, ta, tb] of [[256, 1024, 784, false, true], [256, 784, 1024, false, false], [1024, 784, 256, true, false], [37, 29, 301, true, true]]) {
        const a = Float32Array.from({ length: m * kk }, rnd);
        const b = Float32Array.from({ length: kk * n }, rnd);
        const c1 = run(relaxed1.kernels, m, n, kk, ta, tb, a, b);
        await new Promise((resolve) => setTimeout(resolve, 300)); // let the workers start
        const c2 = run(relaxed2.kernels, m, n, kk, ta, tb, a, b);
        identical.push(Buffer.from(c1.buffer).equals(Buffer.from(c2.buffer)));
        const u = 2 ** -24, gamma = (kk * u) / (1 - kk * u);
        let ratio = 0;
        for (let s = 0; s < 64; s++) {
          const i = (s * 7919) % m, j = (s * 104729) % n;
          let exact = 0, size = 0;
          for (let p = 0; p < kk; p++) {
            const x = a[ta ? p * m + i : i * kk + p] * b[tb ? j * kk + p : p * n + j];
            exact += x; size += Math.abs(x);
          }
          ratio = Math.max(ratio, Math.abs(c1[i * n + j] - exact) / (gamma * size));
        }
        worst.push(ratio);
      }
      const losses = [];
      for (const k of [relaxed2.kernels, plain.kernels]) {
        const model = new Mlp({ layers: [784, 128, 64, 10], activation: 'relu', alpha: 0.01 }, { kernels: k, capacity: 128, init: 'auto', rng: new Rng(3) });
        seed = 9;
        model.inputTensor.data.set(Float32Array.from({ length: 128 * 784 }, rnd));
        for (let i = 0; i < 128; i++) model.labelTensor.data[i] = i % 10;
        const run = [];
        for (let step = 0; step < 20; step++) {
          run.push(model.computeGradients(128, 0));
          for (const p of model.parameters) k.sgdStep(p.size, p.value, p.grad, null, 0.05, 0, false, 0);
        }
        losses.push(run);
        model.dispose();
      }
      console.log(JSON.stringify({ isa: relaxed1.kernels.info().isa, plainIsa: plain.kernels.info().isa, worst, identical, losses }));
      for (const b of [relaxed1, relaxed2, plain]) b.dispose();
    `);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { isa: string; plainIsa: string; worst: number[]; identical: boolean[]; losses: [number[], number[]] };
    expect(out.isa).toBe('simd128-relaxed');
    expect(out.plainIsa).toBe('simd128');
    for (const w of out.worst) expect(w).toBeLessThanOrEqual(1);
    expect(out.identical).toEqual([true, true, true, true]);
    const [relaxed, plain] = out.losses;
    expect(relaxed[19]!).toBeLessThan(relaxed[0]! * 0.8); // it learns the batch
    relaxed.forEach((loss, i) => expect(Math.abs(loss - plain[i]!)).toBeLessThanOrEqual(1e-4 * Math.max(1, plain[i]!)));
  });
});
