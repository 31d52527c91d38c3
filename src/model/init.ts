/**
 * Weight initialisation. Every draw comes from the run's one seeded Rng, in a fixed order
 * (layer 0's weights row by row, then layer 1's, ...), so the same seed gives the same
 * weights bit for bit on every backend.
 *
 * Formulas follow torch.nn.init:
 * - kaiming_uniform: U(-b, b), b = gain * sqrt(3 / fan_in)
 * - kaiming_normal:  N(0, std^2), std = gain / sqrt(fan_in)
 * - xavier_uniform:  U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out))
 * - xavier_normal:   N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))
 * with gain from `activationGain` (torch.nn.init.calculate_gain). Hidden layers use the gain
 * of the hidden activation; the output layer (linear into softmax) uses gain 1.
 * 'auto' picks kaiming_uniform for relu / leaky_relu / prelu and xavier_uniform for sigmoid /
 * tanh / linear. Biases start at zero (not PyTorch's default fan-in uniform): with a
 * fan-in-scaled weight init, zero biases are the usual, simpler choice.
 */
import type { ActivationName } from '../kernels/types.js';
import type { Rng } from '../rng.js';

/** How a model's weights start ('auto': by the activation, see resolveInit). */
export type InitName = 'auto' | 'kaiming_uniform' | 'kaiming_normal' | 'xavier_uniform' | 'xavier_normal';
export const INIT_NAMES: readonly InitName[] = ['auto', 'kaiming_uniform', 'kaiming_normal', 'xavier_uniform', 'xavier_normal'];

export type ConcreteInit = Exclude<InitName, 'auto'>;

/** torch.nn.init.calculate_gain for our activations; `alpha` is the leaky / initial prelu slope. */
export function activationGain(activation: ActivationName, alpha: number): number {
  switch (activation) {
    case 'relu':
      return Math.SQRT2;
    case 'leaky_relu':
    case 'prelu':
      return Math.sqrt(2 / (1 + alpha * alpha));
    case 'tanh':
      return 5 / 3;
    case 'sigmoid':
    case 'linear':
      return 1;
  }
}

export function resolveInit(init: InitName, activation: ActivationName): ConcreteInit {
  if (init !== 'auto') return init;
  return activation === 'relu' || activation === 'leaky_relu' || activation === 'prelu' ? 'kaiming_uniform' : 'xavier_uniform';
}

/** Fills `out` (a fan_out x fan_in weight matrix, row-major) from the rng. */
export function initWeights(out: Float32Array, fanIn: number, fanOut: number, init: ConcreteInit, gain: number, rng: Rng): void {
  const n = fanIn * fanOut;
  if (out.length < n) throw new RangeError(`weight buffer holds ${out.length} elements, needs ${n}`);
  switch (init) {
    case 'kaiming_uniform': {
      const bound = gain * Math.sqrt(3 / fanIn);
      for (let i = 0; i < n; i++) out[i] = rng.uniform(-bound, bound);
      return;
    }
    case 'kaiming_normal': {
      const std = gain / Math.sqrt(fanIn);
      for (let i = 0; i < n; i++) out[i] = std * rng.normal();
      return;
    }
    case 'xavier_uniform': {
      const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
      for (let i = 0; i < n; i++) out[i] = rng.uniform(-bound, bound);
      return;
    }
    case 'xavier_normal': {
      const std = gain * Math.sqrt(2 / (fanIn + fanOut));
      for (let i = 0; i < n; i++) out[i] = std * rng.normal();
      return;
    }
  }
}
