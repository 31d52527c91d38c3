/** What a model is, in numbers: per-layer shapes, parameter counts and multiply-adds per image. */
import type { ModelArchitecture } from './mlp.js';

export interface LayerSummary {
  /** 0-based, as in the tensor names (layers.{index}.weight). */
  index: number;
  inputs: number;
  outputs: number;
  /** 'relu', 'prelu (learned slope -0.12)', ... for hidden layers; 'softmax' for the output layer (its logits are linear). */
  activation: string;
  /** weight + bias (+ 1 PReLU slope). */
  parameters: number;
  /** inputs x outputs multiply-adds per image (the GEMM; bias and activation not counted). */
  multiplyAdds: number;
}

export interface ModelSummary {
  layers: LayerSummary[];
  parameters: number;
  multiplyAdds: number;
}

export function summarizeArchitecture(arch: Readonly<ModelArchitecture>, preluSlopes: readonly number[] = []): ModelSummary {
  const sizes = arch.layers;
  const hidden = sizes.length - 2;
  const layers: LayerSummary[] = [];
  for (let i = 0; i < sizes.length - 1; i++) {
    const inputs = sizes[i]!;
    const outputs = sizes[i + 1]!;
    const isHidden = i < hidden;
    const prelu = isHidden && arch.activation === 'prelu';
    let activation = 'softmax';
    if (isHidden) {
      if (arch.activation === 'leaky_relu') activation = `leaky_relu (slope ${arch.alpha})`;
      else if (prelu) activation = preluSlopes[i] !== undefined ? `prelu (learned slope ${Number(preluSlopes[i]!.toPrecision(4))})` : 'prelu';
      else activation = arch.activation;
    }
    layers.push({
      index: i,
      inputs,
      outputs,
      activation,
      parameters: inputs * outputs + outputs + (prelu ? 1 : 0),
      multiplyAdds: inputs * outputs,
    });
  }
  return {
    layers,
    parameters: layers.reduce((a, l) => a + l.parameters, 0),
    multiplyAdds: layers.reduce((a, l) => a + l.multiplyAdds, 0),
  };
}
