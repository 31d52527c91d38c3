/** `densetrain export --model FILE --onnx OUT.onnx`: the model as ONNX, for onnxruntime and friends. */
import { resolve } from 'node:path';
import { exportOnnx, ONNX_OPSET, OnnxExportError } from '../../export/onnx.js';
import { writeFileAtomic } from '../../model/safetensors.js';
import { UsageError } from '../errors.js';
import { formatCount } from '../../format.js';
import type { RegisterCommand } from '../context.js';
import { addModelOptions, loadModelFile, type ModelFileOptions } from '../model-file.js';
import { packageVersion } from '../version.js';

interface ExportOptions extends ModelFileOptions {
  onnx: string;
}

export const registerExportCommand: RegisterCommand = (program, { io }) => {
  const command = program
    .command('export')
    .description(`write a trained model as ONNX (opset ${ONNX_OPSET}): input pixels [N, inputs] as raw 0-255 values, outputs logits and probabilities`);
  addModelOptions(command)
    .requiredOption('--onnx <file>', 'the ONNX file to write (replaced if it exists)')
    .option('--verbose', 'print stack traces on errors')
    .addHelpText(
      'after',
      `
The pixel scaling the model was trained with is inside the graph, so callers feed raw pixels.
Serve it with onnxruntime-node (Node.js) or onnxruntime-web (browsers); see the README.`,
    )
    .action(async (options: ExportOptions) => {
      const { model, origin } = await loadModelFile(options);
      let bytes: Uint8Array;
      try {
        bytes = exportOnnx(model, { producerVersion: packageVersion(), source: origin.file });
      } catch (error) {
        if (error instanceof OnnxExportError) throw new UsageError(`${options.model}: ${error.message}`);
        throw error;
      } finally {
        model.dispose();
      }
      await writeFileAtomic(options.onnx, bytes);
      const a = model.architecture;
      io.out(`wrote ${resolve(options.onnx)} (${formatCount(bytes.length)} bytes, ONNX opset ${ONNX_OPSET})`);
      io.out(`  input  pixels [N, ${a.layers[0]}] float32, raw 0-255 (scaling inside the graph: ${model.scaling?.kind === 'standardize' ? 'divide by 255, standardise' : 'divide by 255'})`);
      io.out(`  output logits, probabilities [N, ${a.layers[a.layers.length - 1]}] float32; network ${a.layers.join('-')} ${a.activation}`);
    });
};
