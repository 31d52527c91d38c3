/**
 * A densetrain MLP as an ONNX model (opset 13), built as ONNX's own protobuf messages (the
 * schema in onnx-schema.ts, encoded by protobufjs), so onnxruntime (Node, web, Python, C++) can
 * serve it.
 *
 *   pixels  float32 [N, inputs], raw pixel values 0-255
 *     -> Div 255 (-> Sub mean -> Div std, for a standardised model): densetrain's pixel scaling
 *     -> per layer: Gemm(x, layers.{i}.weight [out, in], layers.{i}.bias, transB=1)
 *        then Relu | LeakyRelu(alpha) | PRelu(layers.{i}.prelu_slope) | Sigmoid | Tanh | nothing (linear)
 *     -> logits [N, classes] -> Softmax(axis 1) -> probabilities [N, classes]
 *
 * Initializers keep the checkpoint's tensor names. metadata_props carry the class names, the
 * pixel scaling, the architecture and the densetrain version. A model that cannot be expressed
 * (no known pixel scaling, non-finite weights, too large for one protobuf message) is refused
 * with an OnnxExportError saying why.
 */
import type { Model } from '../model/mlp.js';
import { AttributeType, ModelProto, TensorDataType } from './onnx-schema.js';

/** Opset 13: Softmax over one axis (not the flattened 2-D of opset < 13), Gemm, PRelu with broadcasting. */
export const ONNX_OPSET = 13;
/** IR version 7 is the one that goes with opset 13 (ONNX 1.8). */
const IR_VERSION = 7;
/** Protobuf messages cannot exceed 2 GiB; ONNX's external-data files are not supported here. */
const MAX_MESSAGE_BYTES = 2 ** 31 - 1;

export class OnnxExportError extends Error {
  override readonly name = 'OnnxExportError';
}

export interface OnnxExportOptions {
  /** densetrain's version, recorded in producer_version and the metadata. */
  producerVersion: string;
  /** Where the model came from, for the doc string (a file path). */
  source?: string;
}

// Plain objects in the shape of ONNX's messages (camelCase fields); ModelProto.fromObject checks and converts them.
interface TensorMessage {
  name: string;
  dims: number[];
  dataType: number;
  rawData: Uint8Array;
}
interface AttributeMessage {
  name: string;
  type: number;
  f?: number;
  i?: number;
}
interface NodeMessage {
  opType: string;
  input: string[];
  output: string[];
  name: string;
  attribute: AttributeMessage[];
}

function floatTensor(name: string, dims: number[], data: Float32Array): TensorMessage {
  // raw_data: little-endian float32, the layout PyTorch's exporter writes (safetensors.ts refuses big-endian hosts).
  return { name, dims, dataType: TensorDataType.FLOAT, rawData: new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)) };
}

function scalar(name: string, value: number): TensorMessage {
  return floatTensor(name, [], Float32Array.of(value));
}

function node(opType: string, inputs: string[], output: string, attributes: AttributeMessage[] = []): NodeMessage {
  return { opType, input: inputs, output: [output], name: output, attribute: attributes };
}

function floatAttribute(name: string, value: number): AttributeMessage {
  return { name, type: AttributeType.FLOAT, f: value };
}

function intAttribute(name: string, value: number): AttributeMessage {
  return { name, type: AttributeType.INT, i: value };
}

function tensorValue(name: string, dims: (number | string)[]): object {
  return {
    name,
    type: { tensorType: { elemType: TensorDataType.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

/** Why a model cannot be exported, or null. */
function exportProblem(model: Model, parameters: Record<string, Float32Array>): string | null {
  if (model.scaling === null) {
    return 'its pixel scaling is unknown (a safetensors file without densetrain metadata), and the ONNX graph takes raw 0-255 pixels; export a model densetrain trained';
  }
  if (model.scaling.kind === 'standardize' && !(Number.isFinite(model.scaling.mean) && Number.isFinite(model.scaling.std) && model.scaling.std > 0)) {
    return `its pixel scaling is not usable (mean ${model.scaling.mean}, std ${model.scaling.std})`;
  }
  let bytes = 0;
  for (const [name, values] of Object.entries(parameters)) {
    bytes += values.byteLength;
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i]!)) return `tensor ${name} holds a non-finite value (${values[i]}) at index ${i}: the model diverged`;
    }
  }
  if (bytes > MAX_MESSAGE_BYTES - 1024 * 1024) {
    return `its ${bytes} bytes of weights exceed what one ONNX protobuf file can hold (2 GiB)`;
  }
  return null;
}

/** Initializers and nodes that turn raw 0-255 `pixels` into `pixels_scaled`, the model's input scaling. */
function scalingGraph(scaling: NonNullable<Model['scaling']>): { initializers: TensorMessage[]; nodes: NodeMessage[] } {
  const initializers = [scalar('pixel_max', 255)];
  const nodes: NodeMessage[] = [node('Div', ['pixels', 'pixel_max'], scaling.kind === 'unit' ? 'pixels_scaled' : 'pixels_unit')];
  if (scaling.kind === 'standardize') {
    initializers.push(scalar('pixel_mean', scaling.mean), scalar('pixel_std', scaling.std));
    nodes.push(node('Sub', ['pixels_unit', 'pixel_mean'], 'pixels_centred'), node('Div', ['pixels_centred', 'pixel_std'], 'pixels_scaled'));
  }
  return { initializers, nodes };
}

/**
 * The hidden activation of layer `i` applied to `x`, written to `out` (pushing its node and any
 * learned slope); false for 'linear', which needs no node (the next Gemm reads `x`).
 */
function pushActivation(
  arch: Model['architecture'],
  i: number,
  x: string,
  out: string,
  parameters: Record<string, Float32Array>,
  graph: { initializers: TensorMessage[]; nodes: NodeMessage[] },
): boolean {
  const { nodes, initializers } = graph;
  switch (arch.activation) {
    case 'relu':
      nodes.push(node('Relu', [x], out));
      return true;
    case 'leaky_relu':
      nodes.push(node('LeakyRelu', [x], out, [floatAttribute('alpha', arch.alpha)]));
      return true;
    case 'prelu': {
      const slope = `layers.${i}.prelu_slope`;
      initializers.push(floatTensor(slope, [1], parameters[slope]!));
      nodes.push(node('PRelu', [x, slope], out));
      return true;
    }
    case 'sigmoid':
      nodes.push(node('Sigmoid', [x], out));
      return true;
    case 'tanh':
      nodes.push(node('Tanh', [x], out));
      return true;
    case 'linear':
      return false;
    default:
      throw new OnnxExportError(`cannot export this model to ONNX: activation ${JSON.stringify(arch.activation)} has no ONNX operator here`);
  }
}

/** The model's metadata_props: what a reader needs to feed the graph and name its outputs. */
function modelMetadata(model: Model, scaling: NonNullable<Model['scaling']>, options: OnnxExportOptions): Record<string, string> {
  const arch = model.architecture;
  const sizes = arch.layers;
  const classes = sizes[sizes.length - 1]!;
  const classNames = model.classNames ?? Array.from({ length: classes }, (_, i) => String(i));
  return {
    densetrain_version: options.producerVersion,
    class_names: JSON.stringify(classNames),
    pixel_scaling: JSON.stringify(scaling),
    architecture: JSON.stringify({ layers: sizes, activation: arch.activation, alpha: arch.alpha }),
    input: `pixels: float32 [N, ${sizes[0]}], raw pixel values 0-255, row-major images; the scaling is in the graph`,
  };
}

/** The ONNX model as protobuf bytes. Throws OnnxExportError for a model ONNX cannot express here. */
export function exportOnnx(model: Model, options: OnnxExportOptions): Uint8Array {
  const parameters = model.getParameters();
  const problem = exportProblem(model, parameters);
  if (problem !== null) throw new OnnxExportError(`cannot export this model to ONNX: ${problem}`);
  const arch = model.architecture;
  const scaling = model.scaling!;
  const sizes = arch.layers;
  const hidden = sizes.length - 2;

  const { initializers, nodes } = scalingGraph(scaling);
  let x = 'pixels_scaled';
  for (let i = 0; i < sizes.length - 1; i++) {
    const w = `layers.${i}.weight`;
    const b = `layers.${i}.bias`;
    initializers.push(floatTensor(w, [sizes[i + 1]!, sizes[i]!], parameters[w]!), floatTensor(b, [sizes[i + 1]!], parameters[b]!));
    const isOutput = i === hidden;
    const linear = isOutput ? 'logits' : `layers.${i}.linear`;
    nodes.push(node('Gemm', [x, w, b], linear, [intAttribute('transB', 1)]));
    x = linear;
    if (isOutput) break;
    const out = `layers.${i}.output`;
    if (pushActivation(arch, i, x, out, parameters, { initializers, nodes })) x = out;
  }
  nodes.push(node('Softmax', ['logits'], 'probabilities', [intAttribute('axis', 1)]));

  const classes = sizes[sizes.length - 1]!;
  const graph = {
    name: 'densetrain_mlp',
    node: nodes,
    initializer: initializers,
    input: [tensorValue('pixels', ['N', sizes[0]!])],
    output: [tensorValue('logits', ['N', classes]), tensorValue('probabilities', ['N', classes])],
    docString: `densetrain MLP ${sizes.join('-')} (${arch.activation})${options.source ? ` from ${options.source}` : ''}`,
  };
  const plain = {
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'densetrain',
    producerVersion: options.producerVersion,
    graph,
    metadataProps: Object.entries(modelMetadata(model, scaling, options)).map(([key, value]) => ({ key, value })),
  };
  const invalid = ModelProto.verify(plain);
  if (invalid) throw new Error(`internal error: the ONNX message does not verify: ${invalid}`);
  return ModelProto.encode(ModelProto.fromObject(plain)).finish();
}
