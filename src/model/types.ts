/** The model's plain shapes, apart from the class that implements them (the file writer reads them too). */
import type { ActivationName, Tensor } from '../kernels/types.js';

export interface ModelArchitecture {
  /** Layer sizes, input first, classes last: [784, 128, 64, 10]. At least [in, classes]. */
  layers: number[];
  /** Activation of every hidden layer. */
  activation: ActivationName;
  /** leaky_relu slope; for prelu, the initial slope. Ignored by the other activations. */
  alpha: number;
}

export type ParameterKind = 'weight' | 'bias' | 'prelu_slope';

/** One trainable tensor with its gradient, named as in checkpoints. */
export interface Parameter {
  readonly name: string;
  readonly kind: ParameterKind;
  readonly layer: number;
  readonly shape: readonly number[];
  readonly size: number;
  readonly value: Tensor;
  readonly grad: Tensor;
}
