/** `densetrain eval --model FILE --data SPEC`: test loss, accuracy, confusion, optional per-sample predictions. */
import { writeFile } from 'node:fs/promises';
import Table from 'cli-table3';
import { formatBackendInfo, selectKernels } from '../../kernels/index.js';
import type { ActivationName } from '../../kernels/types.js';
import { confusionTable, perClassTable, withoutRowRules } from '../../report/terminal.js';
import { loadModel } from '../../model/load.js';
import { parseConfigPart } from '../../train/schema.js';
import { loadData } from '../deps.js';
import { UsageError } from '../errors.js';
import { checkOutputFile } from '../output-paths.js';
import { writingFile } from '../../regular-file.js';
import { formatCount, formatLoss, formatPercent } from '../../format.js';
import type { RegisterCommand } from '../context.js';
import { numberOrText } from '../options.js';
import { evaluateProbabilities, predictImageSet } from '../../train/predict.js';

interface EvalOptions {
  model: string;
  data: string;
  predictions?: string;
  activation?: string;
  alpha?: string;
  backend?: string;
  threads?: string;
  verbose?: boolean;
}

const differ = (a: readonly string[], b: readonly string[]): boolean => a.length !== b.length || a.some((name, i) => name !== b[i]);

/** "0, 1, 2, ..., 9" (at most eight names shown). */
function listNames(names: readonly string[]): string {
  return names.length <= 8 ? names.join(', ') : `${names.slice(0, 6).join(', ')}, ... (${names.length} in all)`;
}

export const registerEvalCommand: RegisterCommand = (program, { io }) => {
  program
    .command('eval')
    .description("evaluate a saved model on a dataset's test set")
    .requiredOption('--model <file>', 'model.safetensors (or a run folder), or a PyTorch-style safetensors state dict')
    .requiredOption('--data <spec>', 'dataset: mnist-sample, mnist, fashion-mnist, or a directory / file path')
    .option('--predictions <file>', 'write per-sample predictions as JSON: [{index, label, predicted, probs}]')
    .option('--activation <name>', 'hidden activation (needed for files without densetrain metadata)')
    .option('--alpha <x>', 'leaky_relu slope for files without densetrain metadata')
    .option('--backend <name>', 'kernels: auto, native, wasm, reference')
    .option('--threads <n>', 'native and wasm backend threads')
    .option('--verbose', 'print stack traces on errors')
    .action(async (options: EvalOptions) => {
      // The same checks (and messages) as train's options.
      const checked = parseConfigPart(
        {
          ...(options.activation !== undefined ? { activation: options.activation } : {}),
          ...(options.alpha !== undefined ? { alpha: numberOrText(options.alpha) } : {}),
          ...(options.backend !== undefined ? { backend: options.backend } : {}),
          ...(options.threads !== undefined ? { threads: numberOrText(options.threads) } : {}),
        },
        { kind: 'cli' },
      );
      // Where the predictions go is checked before any work: writable, and not one of the inputs.
      if (options.predictions !== undefined) {
        await checkOutputFile(options.predictions, '--predictions', [
          { path: options.model, option: '--model' },
          { path: options.data, option: '--data' },
        ]);
      }
      const { kernels, info } = selectKernels({ backend: checked.backend, threads: checked.threads });
      io.out(`backend: ${formatBackendInfo(info)}`);

      const model = await loadModel(options.model, {
        kernels,
        ...(checked.activation !== undefined ? { activation: checked.activation as ActivationName } : {}),
        ...(checked.alpha !== undefined ? { alpha: checked.alpha } : {}),
      });
      try {
        const dataset = await (await loadData()).loadDataset(options.data);
        const test = dataset.test;
        if (model.inputSize !== test.features) {
          throw new UsageError(
            `--model takes ${model.inputSize} inputs but --data ${options.data} has ${test.features} pixels per image (${test.height}x${test.width})`,
          );
        }
        if (model.classes !== dataset.classes) {
          throw new UsageError(`--model has ${model.classes} classes but --data ${options.data} has ${dataset.classes}`);
        }
        // Same count, other labels (a Fashion-MNIST model on MNIST digits): its accuracy would mean nothing.
        if (model.classNames && differ(model.classNames, dataset.classNames)) {
          throw new UsageError(
            `--model was trained on the classes ${listNames(model.classNames)} but --data ${options.data} has ${listNames(dataset.classNames)}; evaluate it on data with its classes`,
          );
        }
        const probs = predictImageSet(model, test, model.scaling);
        const result = evaluateProbabilities(probs, test.labels, model.classes);

        const table = new Table({ style: { head: [], border: [] } });
        table.push(
          { model: options.model },
          { data: `${dataset.name} (test set, ${formatCount(result.count)} images)` },
          { 'test loss': formatLoss(result.loss) },
          { 'test accuracy': formatPercent(result.accuracy) },
        );
        io.out(withoutRowRules(table.toString(), { header: false }));
        const classNames = model.classNames ?? dataset.classNames;
        io.out('confusion matrix (rows: true class, columns: predicted)');
        io.out(confusionTable(result.confusion, classNames));
        io.out(perClassTable(result.confusion, classNames));

        if (options.predictions !== undefined) {
          const lines: string[] = [];
          for (let i = 0; i < result.count; i++) {
            const p = Array.from(probs.subarray(i * model.classes, (i + 1) * model.classes));
            lines.push(JSON.stringify({ index: i, label: test.labels[i], predicted: result.predictions[i], probs: p }));
          }
          const file = options.predictions;
          await writingFile(file, () => writeFile(file, `[\n${lines.join(',\n')}\n]\n`));
          io.out(`predictions: ${options.predictions}`);
        }
      } finally {
        model.dispose();
      }
    });
};
