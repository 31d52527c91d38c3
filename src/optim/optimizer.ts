/**
 * Optimizers update parameters in place with the fused backend kernels (sgdStep, adamStep).
 * L2 is folded into the step for weights only (the `l2` argument of the kernels); biases and
 * prelu slopes get no decay. State tensors are allocated once, at construction, and are named
 * for checkpoints: `optim.<parameter name>.<slot>` (slot 'velocity' for SGD with momentum,
 * 'm' and 'v' for Adam).
 */
import type { FusedSgd, Kernels, Tensor } from '../kernels/types.js';
import type { Parameter } from '../model/types.js';

export type OptimizerName = 'sgd' | 'adam';
export const OPTIMIZER_NAMES: readonly OptimizerName[] = ['sgd', 'adam'];

export interface Optimizer {
  readonly name: OptimizerName;
  /** Updates applied so far (Adam's t after the last step). */
  readonly stepCount: number;
  /** One update of every parameter with learning rate `lr`, from the gradients in `parameter.grad`. */
  step(lr: number): void;
  /** The state tensors, named `optim.<parameter>.<slot>`. */
  stateTensors(): Map<string, Tensor>;
  /** Restores the step counter (state tensors are restored by writing into stateTensors()). */
  setStepCount(steps: number): void;
  /**
   * This optimizer's update as a model's fused step can apply it (Mlp.fuseSgd), or null when it
   * cannot (Adam). After each step the model applied, call countFusedStep() instead of step().
   */
  fusedSgd(): FusedSgd | null;
  /** Counts one update that a fused step applied (stepCount + 1). */
  countFusedStep(): void;
  dispose(): void;
}

export interface SgdOptions {
  momentum?: number;
  nesterov?: boolean;
  /** L2 coefficient, applied to weights only. */
  l2?: number;
}

export interface AdamOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  l2?: number;
}

function decayFor(p: Parameter, l2: number): number {
  return p.kind === 'weight' ? l2 : 0;
}

function checkHyper(name: string, value: number, lo: number, hi: number, hiOpen: boolean): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < lo || (hiOpen ? value >= hi : value > hi)) {
    throw new RangeError(`${name} must be a number in [${lo}, ${hi}${hiOpen ? ')' : ']'}, got ${value}`);
  }
}

function checkLr(lr: number): void {
  if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0) throw new RangeError(`lr must be a finite number >= 0, got ${lr}`);
}

/** The update counter both optimizers keep (Adam's t; checkpoints record it). */
abstract class CountedOptimizer {
  protected steps = 0;

  get stepCount(): number {
    return this.steps;
  }

  setStepCount(steps: number): void {
    if (!Number.isInteger(steps) || steps < 0) throw new RangeError(`step count must be a non-negative integer, got ${steps}`);
    this.steps = steps;
  }
}

export class Sgd extends CountedOptimizer implements Optimizer {
  readonly name = 'sgd' as const;
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly l2: number;
  #kernels: Kernels;
  #params: readonly Parameter[];
  #velocity: (Tensor | null)[];

  constructor(kernels: Kernels, params: readonly Parameter[], options: SgdOptions = {}) {
    super();
    this.momentum = options.momentum ?? 0;
    this.nesterov = options.nesterov ?? false;
    this.l2 = options.l2 ?? 0;
    checkHyper('momentum', this.momentum, 0, 1, true);
    checkHyper('l2', this.l2, 0, Number.MAX_VALUE, false);
    if (this.nesterov && this.momentum === 0) throw new RangeError('nesterov needs momentum > 0');
    this.#kernels = kernels;
    this.#params = params;
    this.#velocity = params.map((p) => (this.momentum !== 0 ? kernels.alloc(p.size) : null));
  }

  step(lr: number): void {
    checkLr(lr);
    this.#params.forEach((p, i) => {
      this.#kernels.sgdStep(p.size, p.value, p.grad, this.#velocity[i]!, lr, this.momentum, this.nesterov, decayFor(p, this.l2));
    });
    this.steps++;
  }

  fusedSgd(): FusedSgd {
    return {
      settings: { momentum: this.momentum, nesterov: this.nesterov, l2: this.l2 },
      values: this.#params.map((p) => p.value),
      velocity: [...this.#velocity],
    };
  }

  countFusedStep(): void {
    this.steps++;
  }

  stateTensors(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    this.#params.forEach((p, i) => {
      const v = this.#velocity[i];
      if (v) out.set(`optim.${p.name}.velocity`, v);
    });
    return out;
  }

  dispose(): void {
    for (const v of this.#velocity) if (v && !v.freed) this.#kernels.free(v);
    this.#velocity = [];
  }
}

export class Adam extends CountedOptimizer implements Optimizer {
  readonly name = 'adam' as const;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly l2: number;
  #kernels: Kernels;
  #params: readonly Parameter[];
  #m: Tensor[];
  #v: Tensor[];

  constructor(kernels: Kernels, params: readonly Parameter[], options: AdamOptions = {}) {
    super();
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    this.l2 = options.l2 ?? 0;
    checkHyper('beta1', this.beta1, 0, 1, true);
    checkHyper('beta2', this.beta2, 0, 1, true);
    checkHyper('eps', this.eps, 0, Number.MAX_VALUE, false);
    checkHyper('l2', this.l2, 0, Number.MAX_VALUE, false);
    this.#kernels = kernels;
    this.#params = params;
    this.#m = params.map((p) => kernels.alloc(p.size));
    this.#v = params.map((p) => kernels.alloc(p.size));
  }

  step(lr: number): void {
    checkLr(lr);
    const t = this.steps + 1;
    this.#params.forEach((p, i) => {
      this.#kernels.adamStep(p.size, p.value, p.grad, this.#m[i]!, this.#v[i]!, lr, this.beta1, this.beta2, this.eps, decayFor(p, this.l2), t);
    });
    this.steps = t;
  }

  fusedSgd(): null {
    return null;
  }

  countFusedStep(): void {
    throw new Error('Adam has no fused update: call step()');
  }

  stateTensors(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    this.#params.forEach((p, i) => {
      out.set(`optim.${p.name}.m`, this.#m[i]!);
      out.set(`optim.${p.name}.v`, this.#v[i]!);
    });
    return out;
  }

  dispose(): void {
    for (const t of [...this.#m, ...this.#v]) if (!t.freed) this.#kernels.free(t);
    this.#m = [];
    this.#v = [];
  }
}

export interface OptimizerConfig {
  optimizer: 'sgd' | 'adam';
  momentum: number;
  nesterov: boolean;
  beta1: number;
  beta2: number;
  eps: number;
  l2: number;
}

export function createOptimizer(kernels: Kernels, params: readonly Parameter[], config: OptimizerConfig): Optimizer {
  if (config.optimizer === 'sgd') {
    return new Sgd(kernels, params, { momentum: config.momentum, nesterov: config.nesterov, l2: config.l2 });
  }
  if (config.optimizer === 'adam') {
    return new Adam(kernels, params, { beta1: config.beta1, beta2: config.beta2, eps: config.eps, l2: config.l2 });
  }
  throw new RangeError(`optimizer must be 'sgd' or 'adam', got ${JSON.stringify(config.optimizer)}`);
}
