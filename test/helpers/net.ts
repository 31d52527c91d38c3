/**
 * The fixtures' MLP (20 -> 16 -> 12 -> 10) run through a Kernels backend, kernel by kernel, the
 * way the model will run it. Two weight layouts exercise different gemm transposes:
 *
 *   layout   forward Z = A·W      dW                    dA = dZ·W
 *   in_out   W [in,out]:  NN      Aᵀ·dZ  (TN)          dZ·Wᵀ (NT)        (the fixtures' layout)
 *   out_in   W [out,in]:  NT      dZᵀ·A  (TN)          dZ·W  (NN)        (nn.Linear / our model)
 *
 * Every activation buffer is allocated longer than needed and its tail filled with a guard value;
 * `guardsIntact()` checks that no kernel wrote past the logical size.
 */
import type { Activation, Kernels, Tensor } from '../../src/kernels/types.js';
import type { ActSpec } from './bounds.js';

export type Layout = 'in_out' | 'out_in';

export const GUARD = 12345.5;
const PAD = 5;

/** Parameters in the fixtures' layout: W[l] is [in, out] row-major. */
export interface Params64 {
  W: ArrayLike<number>[];
  b: ArrayLike<number>[];
  slope: (number | null)[];
}

function transpose(src: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = src[i * cols + j]!;
  return out;
}

export class KernelNet {
  readonly W: Tensor[] = [];
  readonly b: Tensor[] = [];
  readonly gW: Tensor[] = [];
  readonly gb: Tensor[] = [];
  readonly slope: (Tensor | null)[] = [null, null];
  readonly gSlope: (Tensor | null)[] = [null, null];
  readonly z: Tensor[] = [];
  readonly h: Tensor[] = [];
  readonly dA: Tensor[] = [];
  readonly dZ: Tensor[] = [];
  readonly x: Tensor;
  readonly labels: Tensor;
  readonly probs: Tensor;
  readonly dlogits: Tensor;
  private readonly guarded: { t: Tensor; n: number }[] = [];
  private readonly all: Tensor[] = [];

  constructor(
    readonly k: Kernels,
    readonly sizes: readonly number[],
    readonly batch: number,
    readonly layout: Layout,
    readonly act: ActSpec,
  ) {
    const B = batch;
    this.x = this.guardedAlloc(B * sizes[0]!);
    this.labels = this.guardedAlloc(B);
    for (let l = 0; l < 3; l++) {
      const n = sizes[l]! * sizes[l + 1]!;
      this.W.push(this.plainAlloc(n));
      this.gW.push(this.guardedAlloc(n));
      this.b.push(this.plainAlloc(sizes[l + 1]!));
      this.gb.push(this.guardedAlloc(sizes[l + 1]!));
      this.z.push(this.guardedAlloc(B * sizes[l + 1]!));
      this.dZ.push(this.guardedAlloc(B * sizes[l + 1]!));
      this.dA.push(this.guardedAlloc(B * sizes[l]!));
    }
    for (let l = 0; l < 2; l++) {
      this.h.push(this.guardedAlloc(B * sizes[l + 1]!));
      if (act.name === 'prelu') {
        this.slope[l] = this.plainAlloc(1);
        this.gSlope[l] = this.guardedAlloc(1);
      }
    }
    this.probs = this.guardedAlloc(B * sizes[3]!);
    this.dlogits = this.guardedAlloc(B * sizes[3]!);
  }

  private plainAlloc(n: number): Tensor {
    const t = this.k.alloc(n);
    this.all.push(t);
    return t;
  }

  private guardedAlloc(n: number): Tensor {
    const t = this.k.alloc(n + PAD);
    t.data.fill(GUARD, n);
    this.guarded.push({ t, n });
    this.all.push(t);
    return t;
  }

  /** True if no kernel wrote past the logical end of any activation/gradient buffer. */
  guardsIntact(): boolean {
    return this.guarded.every(({ t, n }) => t.data.subarray(n).every((v) => v === GUARD));
  }

  free(): void {
    for (const t of this.all) this.k.free(t);
  }

  /** Loads parameters given in the fixtures' [in,out] layout. */
  setParams(p: Params64): void {
    for (let l = 0; l < 3; l++) {
      const [fin, fout] = [this.sizes[l]!, this.sizes[l + 1]!];
      this.W[l]!.data.set(this.layout === 'in_out' ? Array.from(p.W[l]!) : transpose(p.W[l]!, fin, fout));
      this.b[l]!.data.set(Array.from(p.b[l]!));
      const s = this.slope[l];
      if (s && l < 2) s.data[0] = p.slope[l] ?? NaN;
    }
  }

  setInput(x: ArrayLike<number>, y: ArrayLike<number>): void {
    this.x.data.set(Array.from(x));
    this.labels.data.set(Array.from(y));
  }

  hiddenAct(l: number): Activation {
    switch (this.act.name) {
      case 'leaky_relu':
        return { kind: 'leaky_relu', alpha: this.act.alpha };
      case 'prelu':
        return { kind: 'prelu', slope: this.slope[l]! };
      default:
        return { kind: this.act.name };
    }
  }

  /** Forward pass; returns the data loss (mean cross-entropy). */
  forward(): number {
    const { k, sizes, batch: B } = this;
    let A = this.x;
    for (let l = 0; l < 3; l++) {
      const [fin, fout] = [sizes[l]!, sizes[l + 1]!];
      const Z = this.z[l]!;
      k.gemm(false, this.layout === 'out_in', B, fout, fin, 1, A, this.W[l]!, 0, Z);
      if (l < 2) {
        k.biasActivation(B, fout, Z, this.b[l]!, this.hiddenAct(l), this.h[l]!);
        A = this.h[l]!;
      } else {
        // Logits: bias, no activation, written in place.
        k.biasActivation(B, fout, Z, this.b[l]!, { kind: 'linear' }, Z);
      }
    }
    return k.softmaxCrossEntropy(B, sizes[3]!, this.z[2]!, this.labels, this.probs, this.dlogits);
  }

  /** Σ ||W_l||² through sumSquares. */
  sumSquares(): number {
    let s = 0;
    for (let l = 0; l < 3; l++) s += this.k.sumSquares(this.sizes[l]! * this.sizes[l + 1]!, this.W[l]!);
    return s;
  }

  /**
   * Backward pass from dlogits. With lambda != 0 the weight gradients include lambda*W, folded
   * into the dW gemm (C prefilled with W, beta = lambda). With lambda = 0, C is prefilled with NaN
   * and beta = 0, so a gemm that reads C when beta = 0 poisons the gradient.
   */
  backward(lambda: number): void {
    const { k, sizes, batch: B } = this;
    for (let l = 2; l >= 0; l--) {
      const [fin, fout] = [sizes[l]!, sizes[l + 1]!];
      const dZ = l === 2 ? this.dlogits : this.dZ[l]!;
      const A = l === 0 ? this.x : this.h[l - 1]!;
      const gW = this.gW[l]!;
      if (lambda !== 0) gW.data.set(this.W[l]!.data.subarray(0, fin * fout));
      else gW.data.fill(NaN, 0, fin * fout);
      if (this.layout === 'in_out') k.gemm(true, false, fin, fout, B, 1, A, dZ, lambda, gW);
      else k.gemm(true, false, fout, fin, B, 1, dZ, A, lambda, gW);
      k.biasGrad(B, fout, dZ, this.gb[l]!);
      if (l > 0) {
        const dA = this.dA[l]!;
        k.gemm(false, this.layout === 'in_out', B, fin, fout, 1, dZ, this.W[l]!, 0, dA);
        // out_in also exercises the in-place form (dz written over dh).
        const dZprev = this.layout === 'out_in' ? dA : this.dZ[l - 1]!;
        k.activationBackward(B, fin, this.hiddenAct(l - 1), this.z[l - 1]!, this.h[l - 1]!, dA, dZprev, this.gSlope[l - 1] ?? null);
        if (this.layout === 'out_in') this.dZ[l - 1]!.data.set(dA.data.subarray(0, B * fin));
      }
    }
  }

  /** First n elements of a tensor, as float64. */
  static read(t: Tensor, n: number): Float64Array {
    return Float64Array.from(t.data.subarray(0, n));
  }

  /** A weight (or weight gradient) tensor read back in the fixtures' [in,out] layout. */
  readW(t: Tensor, l: number): Float64Array {
    const [fin, fout] = [this.sizes[l]!, this.sizes[l + 1]!];
    const raw = KernelNet.read(t, fin * fout);
    return this.layout === 'in_out' ? raw : transpose(raw, fout, fin);
  }
}
