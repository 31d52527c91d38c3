/**
 * The HTML report of a run: writeReport(outDir, { record, test }) writes outDir/report.html
 * (self-contained) and outDir/charts/*.svg (plus *.png when an optional rasteriser is installed).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ImageSet } from '../data/types.js';
import { formatProbability } from '../format.js';
import {
  accuracy,
  argmaxRows,
  confusionMatrix,
  mostConfidentWrong,
  normalizeConfusion,
  perClassStats,
  topKPerClass,
} from '../train/metrics.js';
import type { RunRecord } from '../train/types.js';
import { accuracyChartSpec, confusionChartSpec, lossChartSpec, preluChartSpec } from './charts.js';
import { renderPage, type ChartBlock, type ImageCard, type PageModel } from './html.js';
import { imageDataUri } from './images.js';
import { chartBlock, rasteriseSvg } from './render.js';

export { confusionTable, perClassTable, type TerminalTableOptions } from './terminal.js';
export { escapeHtml } from './html.js';
export { renderSvg } from './render.js';

export interface ReportInput {
  record: RunRecord;
  /** The test set and the final model's probabilities on it (count x classes, row-major). */
  test?: { images: ImageSet; probs: Float32Array };
  title?: string;
}

export interface ReportOptions {
  /** Images per class in the top-k section (default 3). */
  topK?: number;
  /** Most confidently wrong images shown (default 16). */
  wrongCount?: number;
  /** Pixel replication factor of the digit PNGs (default 3). */
  imageScale?: number;
  /** Write charts/*.png when a rasteriser is installed (default true). */
  chartPngs?: boolean;
}

export interface BuiltReport {
  html: string;
  charts: { name: string; title: string; svg: string }[];
}

/**
 * Classes beyond which the per-class sections that grow with the class count (three confusion
 * heatmaps of classes² cells, the top images per class) are left out or cut, and the report says
 * so: a CSV set with 256 classes and a handful of images each once made a 91 MB report.
 */
export const MAX_CLASS_SECTIONS = 50;

function classCount(record: RunRecord): number {
  const n = record.dataset.classNames.length;
  if (n > 0) return n;
  const last = record.config.layers[record.config.layers.length - 1];
  if (last === undefined || last < 1) throw new Error('report: the record names no classes and has no output layer size');
  return last;
}

function classNamesOf(record: RunRecord, classes: number): string[] {
  return Array.from({ length: classes }, (_, i) => record.dataset.classNames[i] ?? String(i));
}

/** Builds the report page and chart SVGs in memory (writeReport writes them). */
export async function buildReport(input: ReportInput, options: ReportOptions = {}): Promise<BuiltReport> {
  const { record } = input;
  const classes = classCount(record);
  const classNames = classNamesOf(record, classes);
  const notes: string[] = [];
  const test = input.test;
  if (test) {
    if (test.probs.length !== test.images.count * classes) {
      throw new RangeError(
        `report: test probabilities hold ${test.probs.length} values, expected ${test.images.count} images x ${classes} classes`,
      );
    }
    if (test.images.labels.length !== test.images.count) throw new RangeError('report: test labels and image count differ');
  }

  // The test metrics are the record's: train() evaluated the test set once, and the probabilities
  // given here come from that same evaluation. Without a record of them, the probabilities give them.
  const predictions = test ? argmaxRows(test.probs, test.images.count, classes) : null;
  const confusion = record.test?.confusion ?? (test && predictions ? confusionMatrix(test.images.labels, predictions, classes) : null);
  const testAccuracy =
    record.test?.accuracy ?? (test && predictions ? accuracy(test.images.labels, predictions) : confusion ? accuracy(confusion) : null);
  if (!record.test && !test) notes.push('This run has no test-set evaluation.');
  if (record.test && !test) notes.push('Test images and probabilities were not given to the report: the image sections are omitted.');

  const blocks: ChartBlock[] = [];
  const loss = await chartBlock(
    'loss',
    'Loss',
    lossChartSpec(record),
    'Training loss of every batch (faint) and its exponential moving average, with the mean training loss and the validation loss of each epoch. The x axis is in epochs; a batch sits at its fractional position within its epoch.',
  );
  const acc = await chartBlock(
    'accuracy',
    'Accuracy',
    accuracyChartSpec(record, testAccuracy),
    'Training accuracy (measured during the epoch) and validation accuracy per epoch; the diamond is the final model on the test set.',
  );
  blocks.push(loss, acc);
  const preluSpec = preluChartSpec(record);
  const prelu = preluSpec ? await chartBlock('prelu', 'Learned PReLU slopes', preluSpec, 'The learned negative-side slope of each hidden layer at the end of every epoch (epoch 0: the initial value).') : null;
  if (prelu) blocks.push(prelu);

  const confusionBlocks: ChartBlock[] = [];
  const manyClasses = classes > MAX_CLASS_SECTIONS;
  if (confusion && manyClasses) {
    notes.push(
      `This data set has ${classes} classes: the confusion matrices (${classes} x ${classes} cells each) are left out of the report, ` +
        `and the top-${options.topK ?? 3} images are shown for the first ${MAX_CLASS_SECTIONS} classes only; metrics.json holds the whole confusion matrix.`,
    );
  }
  if (confusion && !manyClasses) {
    // Long class names take room beside the grid: smaller cells keep three maps in a row.
    const longNames = Math.max(...classNames.map((n) => n.length)) > 4;
    const cell = classes <= 10 ? (longNames ? 24 : 30) : classes <= 20 ? 20 : 12;
    confusionBlocks.push(
      await chartBlock('confusion-counts', 'Confusion (counts)', confusionChartSpec(confusion, classNames, 'counts', 'Counts', cell)),
      await chartBlock(
        'confusion-by-true',
        'Confusion (by true label)',
        confusionChartSpec(normalizeConfusion(confusion, 'row'), classNames, 'row', 'Normalised by true label', cell),
      ),
      await chartBlock(
        'confusion-by-predicted',
        'Confusion (by predicted label)',
        confusionChartSpec(normalizeConfusion(confusion, 'col'), classNames, 'col', 'Normalised by predicted label', cell),
      ),
    );
    blocks.push(...confusionBlocks);
  }

  let topPerClass: PageModel['topPerClass'] = null;
  let wrong: ImageCard[] | null = null;
  if (test) {
    const scale = options.imageScale ?? 3;
    const { count } = test.images;
    const labels = test.images.labels;
    const top = topKPerClass(test.probs, labels, count, classes, options.topK ?? 3).slice(0, MAX_CLASS_SECTIONS);
    topPerClass = top.map((samples, c) => ({
      className: classNames[c]!,
      cards: samples.map((s) =>
        s.index < 0
          ? { src: null, index: -1, lines: [{ label: '', value: 'no image' }] }
          : {
              src: imageDataUri(test.images, s.index, scale),
              index: s.index,
              // The probability on a line of its own: "1 − 2.1e-10" does not fit beside the index.
              lines: [
                { label: '', value: formatProbability(s.prob, s.rest) },
                { label: `#${s.index}`, value: '' },
              ],
            },
      ),
    }));
    wrong = mostConfidentWrong(test.probs, labels, count, classes, options.wrongCount ?? 16).map((w) => ({
      src: imageDataUri(test.images, w.index, scale),
      index: w.index,
      lines: [
        { label: 'true', value: classNames[w.trueLabel]!, tone: 'good' as const },
        { label: 'predicted', value: classNames[w.predicted]!, tone: 'bad' as const },
        { label: `#${w.index}  p =`, value: formatProbability(w.prob, w.rest), tone: 'bad' as const },
        { label: 'p(true) =', value: formatProbability(w.trueProb) },
      ],
    }));
  }

  const model: PageModel = {
    title: input.title ?? `densetrain report: ${record.dataset.name}`,
    record,
    testAccuracy,
    testLoss: record.test?.loss ?? null,
    testCount: record.test?.count ?? test?.images.count ?? null,
    charts: {
      loss,
      accuracy: acc,
      prelu,
      confusion: confusionBlocks,
    },
    classNames,
    perClass: confusion ? perClassStats(confusion) : null,
    topPerClass,
    wrong,
    notes,
    generatedAt: new Date().toISOString(),
  };
  return { html: renderPage(model), charts: blocks.map((b) => ({ name: b.name, title: b.title, svg: b.svg })) };
}

/**
 * Writes outDir/report.html and outDir/charts/<name>.svg (and .png when @resvg/resvg-js or
 * @napi-rs/canvas is installed). Returns the path of report.html.
 */
export async function writeReport(outDir: string, input: ReportInput, options: ReportOptions = {}): Promise<string> {
  const built = await buildReport(input, options);
  const chartsDir = join(outDir, 'charts');
  await mkdir(chartsDir, { recursive: true });
  for (const c of built.charts) {
    await writeFile(join(chartsDir, `${c.name}.svg`), `<?xml version="1.0" encoding="UTF-8"?>\n${c.svg}\n`);
    if (options.chartPngs ?? true) {
      const png = await rasteriseSvg(c.svg);
      if (png) await writeFile(join(chartsDir, `${c.name}.png`), png);
    }
  }
  const path = join(outDir, 'report.html');
  await writeFile(path, built.html);
  return path;
}
