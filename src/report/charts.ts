/**
 * Vega-Lite spec builders for the report, and the small data preparations behind them
 * (fractional-epoch positions of batches, loss smoothing). Pure: no rendering here.
 */
import type { TopLevelSpec } from 'vega-lite';
import { formatPercent } from '../format.js';
import type { RunRecord } from '../train/types.js';

export const FONT = 'Helvetica, Arial, sans-serif';

export const PALETTE = {
  raw: '#9db7d5',
  smoothed: '#1f5fa8',
  train: '#e07b39',
  val: '#2a9d8f',
  test: '#c0392b',
  layers: ['#1f5fa8', '#e07b39', '#2a9d8f', '#8e44ad', '#c0392b', '#7f8c8d', '#d4a017', '#16a085'],
};

export const baseConfig = {
  font: FONT,
  background: 'white',
  view: { stroke: '#d9dde3' },
  axis: {
    labelColor: '#3c4350',
    titleColor: '#3c4350',
    titleFontWeight: 600 as const,
    titleFontSize: 12,
    labelFontSize: 11,
    gridColor: '#eceff3',
    domainColor: '#9aa3af',
    tickColor: '#9aa3af',
  },
  legend: {
    labelFontSize: 11,
    titleFontSize: 11,
    labelColor: '#3c4350',
    titleColor: '#3c4350',
    orient: 'bottom' as const,
    labelLimit: 400,
    symbolOpacity: 1,
    symbolStrokeWidth: 2.5,
    columnPadding: 24,
  },
  title: { fontSize: 14, fontWeight: 600 as const, color: '#1d2330', anchor: 'start' as const, offset: 10 },
};

export interface XYPoint {
  x: number;
  y: number;
}

/**
 * Training loss of every recorded batch at its fractional-epoch position (epochs are numbered
 * from 1, so the end of epoch e is at x = e): the end of batch b of epoch e is
 * (e - 1) + (b + 1 - batchBase) / batchesPerEpoch, with batchesPerEpoch from the
 * training-split size and batch size (or, when those are unusable, from the batches recorded
 * for that epoch). Non-finite losses are dropped.
 */
export function batchLossPoints(record: RunRecord): XYPoint[] {
  const batchBase = record.batches.some((b) => b.batch === 0) ? 0 : 1;
  const { trainCount } = record.dataset;
  const { batchSize } = record.config;
  const fromConfig = trainCount > 0 && batchSize > 0 ? Math.ceil(trainCount / batchSize) : 0;
  const perEpoch = new Map<number, number>();
  for (const b of record.batches) perEpoch.set(b.epoch, Math.max(perEpoch.get(b.epoch) ?? 0, b.batch + 1 - batchBase));
  const out: XYPoint[] = [];
  for (const b of record.batches) {
    if (!Number.isFinite(b.loss)) continue;
    const n = Math.max(fromConfig, perEpoch.get(b.epoch) ?? 1, 1);
    out.push({ x: b.epoch - 1 + (b.batch + 1 - batchBase) / n, y: b.loss });
  }
  out.sort((a, b) => a.x - b.x);
  return out;
}

/**
 * Debiased exponential moving average (TensorBoard-style): s_t = w s_{t-1} + (1 - w) y_t,
 * divided by (1 - w^t) so the start is not pulled toward zero. The default weight gives an
 * effective window of about 2% of the run (at least 1 point, at most ~100 points).
 */
export function smoothEma(points: XYPoint[], weight?: number): XYPoint[] {
  const w = weight ?? Math.min(0.98, Math.max(0, 1 - 50 / Math.max(1, points.length)));
  let s = 0;
  let correction = 1;
  return points.map((p) => {
    s = w * s + (1 - w) * p.y;
    correction *= w;
    return { x: p.x, y: correction === 1 ? p.y : s / (1 - correction) };
  });
}

/**
 * At most `max` points that keep the shape: when there are more, each bucket of consecutive
 * points becomes its min and its max (in x order), so spikes survive.
 */
export function downsample(points: XYPoint[], max = 1500): XYPoint[] {
  if (points.length <= max) return points;
  const buckets = Math.floor(max / 2);
  const size = points.length / buckets;
  const out: XYPoint[] = [];
  for (let k = 0; k < buckets; k++) {
    const slice = points.slice(Math.floor(k * size), Math.floor((k + 1) * size));
    if (slice.length === 0) continue;
    let lo = slice[0]!;
    let hi = slice[0]!;
    for (const p of slice) {
      if (p.y < lo.y) lo = p;
      if (p.y > hi.y) hi = p;
    }
    if (lo === hi) out.push(lo);
    else out.push(...(lo.x <= hi.x ? [lo, hi] : [hi, lo]));
  }
  return out;
}

interface Row {
  series: string;
  x: number;
  y: number;
}

const finite = (r: Row): boolean => Number.isFinite(r.x) && Number.isFinite(r.y);

/**
 * The colour scale's domain and range restricted to the series that have data, so a run
 * without a validation split (or a test set) has no legend entry for a line that is not drawn.
 */
function presentSeries(rows: readonly { series: string }[], domain: string[], range: string[]): { domain: string[]; range: string[] } {
  const present = new Set(rows.map((r) => r.series));
  const keep = domain.map((d, i) => [d, range[i]!] as const).filter(([d]) => present.has(d));
  return { domain: keep.map(([d]) => d), range: keep.map(([, r]) => r) };
}

/** Training loss per batch (raw, faint, and smoothed), train and validation loss per epoch. */
export function lossChartSpec(record: RunRecord, width = 1000, height = 300): TopLevelSpec {
  const raw = batchLossPoints(record);
  const smooth = smoothEma(raw);
  const rows: Row[] = [
    ...downsample(raw).map((p) => ({ series: 'batch loss (raw)', ...p })),
    ...downsample(smooth, 1000).map((p) => ({ series: 'batch loss (smoothed)', ...p })),
    ...record.epochs.map((e) => ({ series: 'train loss / epoch', x: e.epoch, y: e.trainLoss })),
    ...record.epochs
      .filter((e) => e.valLoss !== null)
      .map((e) => ({ series: 'validation loss / epoch', x: e.epoch, y: e.valLoss as number })),
  ].filter(finite);
  const scale = presentSeries(
    rows,
    ['batch loss (raw)', 'batch loss (smoothed)', 'train loss / epoch', 'validation loss / epoch'],
    [PALETTE.raw, PALETTE.smoothed, PALETTE.train, PALETTE.val],
  );
  const color = { field: 'series', type: 'nominal' as const, title: null, scale };
  const x = { field: 'x', type: 'quantitative' as const, title: 'epoch', scale: { domainMin: 0, nice: false } };
  const y = { field: 'y', type: 'quantitative' as const, title: 'cross-entropy loss', scale: { zero: false } };
  const best = record.epochs.find((e) => e.epoch === record.bestEpoch);
  const layers: any[] = [
    {
      transform: [{ filter: "datum.series === 'batch loss (raw)'" }],
      mark: { type: 'line', strokeWidth: 1, opacity: 0.45, interpolate: 'linear' },
      encoding: { x, y, color },
    },
    {
      transform: [{ filter: "datum.series === 'batch loss (smoothed)'" }],
      mark: { type: 'line', strokeWidth: 2 },
      encoding: { x, y, color },
    },
    {
      transform: [{ filter: "datum.series === 'train loss / epoch' || datum.series === 'validation loss / epoch'" }],
      mark: { type: 'line', strokeWidth: 2, point: { size: 40, filled: true } },
      encoding: { x, y, color },
    },
  ];
  if (best && record.epochs.length > 1) {
    layers.unshift({
      data: { values: [{ x: best.epoch, label: `best epoch ${best.epoch}` }] },
      layer: [
        { mark: { type: 'rule', strokeDash: [4, 4], color: '#9aa3af' }, encoding: { x: { field: 'x', type: 'quantitative' } } },
        {
          mark: { type: 'text', align: 'left', baseline: 'top', dx: 4, dy: 2, y: 0, color: '#6b7280', fontSize: 10 },
          encoding: { x: { field: 'x', type: 'quantitative' }, text: { field: 'label' } },
        },
      ],
    });
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Loss',
    width,
    height,
    config: baseConfig,
    data: { values: rows },
    layer: layers,
  } as TopLevelSpec;
}

/** Train and validation accuracy per epoch; the test accuracy as a marked point at the end. */
export function accuracyChartSpec(
  record: RunRecord,
  testAccuracy: number | null,
  width = 1000,
  height = 260,
): TopLevelSpec {
  const rows: Row[] = [
    ...record.epochs.map((e) => ({ series: 'train', x: e.epoch, y: e.trainAccuracy })),
    ...record.epochs
      .filter((e) => e.valAccuracy !== null)
      .map((e) => ({ series: 'validation', x: e.epoch, y: e.valAccuracy as number })),
  ].filter(finite);
  const last = record.epochs.length > 0 ? record.epochs[record.epochs.length - 1]!.epoch : 1;
  const testRows =
    testAccuracy !== null && Number.isFinite(testAccuracy)
      ? [{ series: 'test (final model)', x: last, y: testAccuracy, label: `test ${formatPercent(testAccuracy)}` }]
      : [];
  const scale = presentSeries([...rows, ...testRows], ['train', 'validation', 'test (final model)'], [PALETTE.train, PALETTE.val, PALETTE.test]);
  const color = { field: 'series', type: 'nominal' as const, title: null, scale };
  // Accuracy is measured at the end of an epoch, the first at epoch 1 (the loss chart starts at 0,
  // the start of training, because its batches fill the first epoch).
  const x = { field: 'x', type: 'quantitative' as const, title: 'epoch', scale: { domainMin: 1, nice: false }, axis: { tickMinStep: 1, format: 'd' } };
  const y = { field: 'y', type: 'quantitative' as const, title: 'accuracy', axis: { format: '.0%' }, scale: { zero: false } };
  const layers: any[] = [
    { data: { values: rows }, mark: { type: 'line', strokeWidth: 2, point: { size: 40, filled: true } }, encoding: { x, y, color } },
  ];
  if (testRows.length > 0) {
    layers.push(
      {
        data: { values: testRows },
        mark: { type: 'point', shape: 'diamond', size: 160, filled: true, opacity: 1 },
        encoding: { x, y, color },
      },
      {
        data: { values: testRows },
        mark: { type: 'text', align: 'right', dx: -10, dy: 14, fontSize: 11, fontWeight: 600, color: PALETTE.test },
        encoding: { x, y, text: { field: 'label' } },
      },
    );
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Accuracy',
    width,
    height,
    config: baseConfig,
    layer: layers,
  } as TopLevelSpec;
}

export type ConfusionMode = 'counts' | 'row' | 'col';

/** Class names made unique (a duplicate gets its index appended), for ordinal axes. */
export function uniqueNames(classNames: string[], classes: number): string[] {
  const seen = new Set<string>();
  return Array.from({ length: classes }, (_, i) => {
    let name = classNames[i] ?? String(i);
    if (seen.has(name)) name = `${name} (${i})`;
    seen.add(name);
    return name;
  });
}

/** A confusion heat map (rows: true label, columns: predicted label) with the value in each cell. */
export function confusionChartSpec(
  matrix: number[][],
  classNames: string[],
  mode: ConfusionMode,
  title: string,
  cell = 30,
): TopLevelSpec {
  const n = matrix.length;
  const names = uniqueNames(classNames, n);
  const max = Math.max(1e-12, ...matrix.flat());
  const rows = matrix.flatMap((row, t) =>
    row.map((v, p) => ({
      truth: names[t],
      predicted: names[p],
      value: v,
      label: mode === 'counts' ? String(v) : v === 0 ? '' : v >= 0.995 ? '1' : v.toFixed(2).replace(/^0/, ''),
      dark: v / (mode === 'counts' ? max : 1) > 0.55,
    })),
  );
  const dark = mode === 'counts' ? '#0b3d7a' : mode === 'row' ? '#0f5e3a' : '#4a2a85';
  const legendTitle = mode === 'counts' ? 'count' : 'fraction';
  const fontSize = n <= 10 ? 10 : n <= 20 ? 8 : 6;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: cell * n,
    height: cell * n,
    config: { ...baseConfig, view: { stroke: null }, axis: { ...baseConfig.axis, grid: false, domain: false } },
    data: { values: rows },
    encoding: {
      x: {
        field: 'predicted',
        type: 'ordinal',
        sort: names,
        title: 'predicted label',
        axis: { labelAngle: -45, labelLimit: 100, orient: 'bottom' },
      },
      y: { field: 'truth', type: 'ordinal', sort: names, title: 'true label', axis: { labelLimit: 100 } },
    },
    layer: [
      {
        mark: { type: 'rect', stroke: 'white', strokeWidth: 1 },
        encoding: {
          color: {
            field: 'value',
            type: 'quantitative',
            title: legendTitle,
            scale: {
              range: ['#f2f5f9', dark],
              interpolate: 'hcl',
              domainMin: 0,
              ...(mode === 'counts' ? {} : { domainMax: 1 }),
            },
            legend: {
              orient: 'bottom',
              direction: 'horizontal',
              gradientLength: Math.max(80, Math.round(cell * n * 0.7)),
              gradientThickness: 10,
              format: mode === 'counts' ? 'd' : '.0%',
              titleOrient: 'left',
              titleBaseline: 'middle',
              tickCount: mode === 'counts' ? 4 : 5,
            },
          },
        },
      },
      {
        mark: { type: 'text', fontSize, baseline: 'middle' },
        encoding: {
          text: { field: 'label' },
          color: {
            condition: [
              { test: 'datum.dark', value: 'white' },
              { test: 'datum.value === 0', value: '#a9b1bd' },
            ],
            value: '#1d2330',
          },
        },
      },
    ],
  } as TopLevelSpec;
}

/** Learned PReLU slope of each hidden layer per epoch (the initial slope at epoch 0). */
export function preluChartSpec(record: RunRecord, width = 1000, height = 220): TopLevelSpec | null {
  const withSlopes = record.epochs.filter((e) => Array.isArray(e.preluSlopes) && e.preluSlopes.length > 0);
  if (withSlopes.length === 0) return null;
  const layerCount = Math.max(...withSlopes.map((e) => e.preluSlopes!.length));
  const rows: Row[] = [];
  for (let l = 0; l < layerCount; l++) {
    const series = `hidden layer ${l + 1}`;
    if (record.config.activation === 'prelu' && Number.isFinite(record.config.alpha)) rows.push({ series, x: 0, y: record.config.alpha });
    for (const e of withSlopes) {
      const v = e.preluSlopes![l];
      if (v !== undefined) rows.push({ series, x: e.epoch, y: v });
    }
  }
  const domain = Array.from({ length: layerCount }, (_, l) => `hidden layer ${l + 1}`);
  const range = domain.map((_, l) => PALETTE.layers[l % PALETTE.layers.length]!);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width,
    height,
    config: baseConfig,
    data: { values: rows.filter(finite) },
    mark: { type: 'line', strokeWidth: 2, point: { size: 40, filled: true } },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: 'epoch', scale: { domainMin: 0, nice: false } },
      y: { field: 'y', type: 'quantitative', title: 'slope a (negative side)', scale: { zero: false } },
      color: { field: 'series', type: 'nominal', title: null, scale: { domain, range } },
    },
  } as TopLevelSpec;
}

// ---------------------------------------------------------------------------------------------
// Comparison and sweep charts (src/report/compare.ts): several runs on one chart.

/** A run on a comparison chart: its label (legend) and record. */
export interface LabelledRun {
  label: string;
  record: RunRecord;
  /** Its colour (default: by position, runColors). */
  color?: string;
}

/** Distinct colours for n runs (the layer palette, repeated when there are more runs). */
export function runColors(n: number): string[] {
  return Array.from({ length: n }, (_, i) => PALETTE.layers[i % PALETTE.layers.length]!);
}

/** A percent axis format with enough digits to tell the ticks of a narrow range apart. */
export function percentFormat(values: number[]): string {
  const finite = values.filter(Number.isFinite);
  if (finite.length < 2) return '.0%';
  const span = Math.max(...finite) - Math.min(...finite);
  return span < 0.005 ? '.2%' : span < 0.05 ? '.1%' : '.0%';
}

/**
 * Train (solid) and validation (dashed) loss or accuracy per epoch of every run, overlaid:
 * colour is the run, dash the split. Loss uses a log y axis when it spans more than 30x.
 */
export function compareCurvesSpec(runs: LabelledRun[], metric: 'loss' | 'accuracy', width = 1000, height = 300): TopLevelSpec {
  const rows: { run: string; split: string; x: number; y: number }[] = [];
  for (const { label, record } of runs) {
    for (const e of record.epochs) {
      const x = e.epoch;
      rows.push({ run: label, split: 'train', x, y: metric === 'loss' ? e.trainLoss : e.trainAccuracy });
      const v = metric === 'loss' ? e.valLoss : e.valAccuracy;
      if (v !== null) rows.push({ run: label, split: 'validation', x, y: v });
    }
  }
  const values = rows.filter((r) => Number.isFinite(r.x) && Number.isFinite(r.y) && (metric === 'accuracy' || r.y > 0));
  const ys = values.map((r) => r.y);
  const logY = metric === 'loss' && ys.length > 0 && Math.max(...ys) / Math.min(...ys) > 30;
  const labels = runs.map((r) => r.label);
  const defaults = runColors(runs.length);
  const colors = runs.map((r, i) => r.color ?? defaults[i]!);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: metric === 'loss' ? 'Loss per epoch' : 'Accuracy per epoch',
    width,
    height,
    config: baseConfig,
    data: { values },
    mark: { type: 'line', strokeWidth: 2, point: { size: 36, filled: true } },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: 'epoch', scale: { zero: false, nice: false }, axis: { tickMinStep: 1, format: 'd' } },
      y:
        metric === 'loss'
          ? { field: 'y', type: 'quantitative', title: 'cross-entropy loss', scale: logY ? { type: 'log' } : { zero: false } }
          : { field: 'y', type: 'quantitative', title: 'accuracy', axis: { format: percentFormat(ys) }, scale: { zero: false } },
      color: { field: 'run', type: 'nominal', title: 'run', sort: labels, scale: { domain: labels, range: colors } },
      strokeDash: {
        field: 'split',
        type: 'nominal',
        title: null,
        scale: { domain: ['train', 'validation'], range: [[1, 0], [6, 4]] },
        legend: SPLIT_LEGEND,
      },
      detail: { field: 'split' },
    },
  } as TopLevelSpec;
}

/**
 * The train (solid) / validation (dashed) legend of a chart whose lines carry filled points:
 * vega-lite gives such a legend's symbols a transparent stroke (it styles them as the filled
 * points), which leaves a stroke symbol with nothing to draw; the symbols' own encoding puts the
 * line back.
 */
export const SPLIT_LEGEND = {
  symbolType: 'stroke',
  symbolSize: 300,
  encode: { symbols: { update: { stroke: { value: '#3c4350' }, strokeWidth: { value: 2 }, fill: { value: 'transparent' } } } },
};

/**
 * The y range of the per-class chart: from just below the lowest accuracy of the runs that
 * learned, to 100%. An accuracy far below the rest (a run that collapsed to one class: 0% on
 * the others) would stretch the axis until every working run looked the same; it is left out
 * of the range (and drawn at the bottom edge as off the scale). "Far": more than four times the
 * median error below the median.
 */
export function perClassRange(accuracies: readonly number[]): { min: number; max: number } {
  const sorted = accuracies.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return { min: 0, max: 1 };
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
  const floor = median - 4 * Math.max(1 - median, 0.01);
  const lowest = sorted.find((v) => v >= floor) ?? sorted[0]!;
  return { min: Math.max(0, Math.floor((lowest - 0.01) * 100) / 100), max: 1 };
}

/**
 * Per-class test accuracy (recall) of every run as a dot per run in each class's column, on a
 * scale fitted to the accuracies (dots, not bars: a bar would claim a baseline the axis does not
 * start at). Accuracies below the scale sit on its bottom edge as a downward triangle with their
 * value.
 */
export function perClassCompareSpec(
  runs: { label: string; accuracies: number[]; color?: string }[],
  classNames: string[],
  width?: number,
  height = 260,
): TopLevelSpec {
  const names = uniqueNames(classNames, classNames.length);
  const labels = runs.map((r) => r.label);
  const defaults = runColors(runs.length);
  const colors = runs.map((r, i) => r.color ?? defaults[i]!);
  const values = runs.flatMap((r) =>
    r.accuracies.map((a, c) => ({ run: r.label, cls: names[c] ?? String(c), accuracy: a })).filter((v) => Number.isFinite(v.accuracy)),
  );
  const range = perClassRange(values.map((v) => v.accuracy));
  const inRange = values.filter((v) => v.accuracy >= range.min);
  const below = values.filter((v) => v.accuracy < range.min).map((v) => ({ ...v, label: formatPercent(v.accuracy, 1) }));
  const x = { field: 'cls', type: 'nominal', sort: names, title: 'class', axis: { labelAngle: names.some((n) => n.length > 3) ? -30 : 0, grid: true } };
  const xOffset = { field: 'run', type: 'nominal', sort: labels, scale: { domain: labels } };
  const color = { field: 'run', type: 'nominal', title: 'run', sort: labels, scale: { domain: labels, range: colors } };
  const y = {
    field: 'accuracy',
    type: 'quantitative',
    title: 'test accuracy (recall)',
    axis: { format: percentFormat(inRange.map((v) => v.accuracy)) },
    scale: { domain: [range.min, range.max], nice: false },
  };
  const layer: unknown[] = [{ data: { values: inRange }, mark: { type: 'point', filled: true, size: 70, opacity: 1 }, encoding: { x, xOffset, y, color } }];
  if (below.length > 0) {
    layer.push(
      { data: { values: below }, mark: { type: 'point', shape: 'triangle-down', filled: true, size: 70, opacity: 1 }, encoding: { x, xOffset, y: { value: height - 6 }, color } },
      { data: { values: below }, mark: { type: 'text', fontSize: 9, dy: -10, angle: 0 }, encoding: { x, xOffset, y: { value: height - 6 }, text: { field: 'label' }, color } },
    );
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Test accuracy per class',
    width: width ?? Math.min(1000, Math.max(360, names.length * Math.max(1, runs.length) * 14 + names.length * 12)),
    height,
    config: baseConfig,
    layer,
  } as TopLevelSpec;
}

/** One value of a sweep: its metric (null when not measured) and how its run ended. */
export interface SweepChartPoint {
  value: number;
  metric: number | null;
  diverged: boolean;
}

export type SweepScale = 'linear' | 'log' | 'symlog';

/**
 * A metric against the swept value: a line through the runs that finished, and every diverged
 * value as a red cross at the top of the chart with a dashed rule and a 'diverged' label, so it
 * is not mistaken for a missing point.
 */
export function sweepChartSpec(
  points: SweepChartPoint[],
  options: { param: string; metric: 'test loss' | 'test accuracy'; scale: SweepScale; width?: number; height?: number },
): TopLevelSpec {
  const ok = points.filter((p) => !p.diverged && p.metric !== null && Number.isFinite(p.metric)).map((p) => ({ value: p.value, y: p.metric as number }));
  const diverged = points.filter((p) => p.diverged).map((p) => ({ value: p.value, label: 'diverged' }));
  const xs = points.map((p) => p.value).filter(Number.isFinite);
  const positive = xs.filter((v) => v > 0);
  // Pixel padding keeps markers at the ends clear of the axes.
  const xScale: Record<string, unknown> =
    options.scale === 'log'
      ? { type: 'log', padding: 24 }
      : options.scale === 'symlog'
        ? { type: 'symlog', constant: positive.length ? Math.min(...positive) : 1, padding: 24 }
        : { zero: false, nice: false, padding: 24 };
  const x = { field: 'value', type: 'quantitative' as const, title: options.param, scale: xScale, axis: options.scale === 'linear' ? {} : { format: '~g' } };
  const accuracyMetric = options.metric === 'test accuracy';
  const y = {
    field: 'y',
    type: 'quantitative' as const,
    title: options.metric,
    scale: { zero: false },
    ...(accuracyMetric ? { axis: { format: percentFormat(ok.map((p) => p.y)) } } : {}),
  };
  const lineColor = accuracyMetric ? PALETTE.val : PALETTE.smoothed;
  const layers: any[] = [
    {
      data: { values: ok },
      mark: { type: 'line', strokeWidth: 2, color: lineColor, point: { size: 60, filled: true, color: lineColor } },
      encoding: { x, y },
    },
  ];
  if (diverged.length > 0) {
    layers.push(
      {
        data: { values: diverged },
        mark: { type: 'rule', color: PALETTE.test, strokeDash: [3, 3], opacity: 0.7 },
        encoding: { x },
      },
      {
        data: { values: diverged },
        mark: { type: 'point', shape: 'cross', size: 220, filled: true, color: PALETTE.test, opacity: 1 },
        encoding: { x, y: { value: 8 } },
      },
      {
        data: { values: diverged },
        mark: { type: 'text', color: PALETTE.test, fontSize: 11, fontWeight: 600, dy: 12, baseline: 'top' },
        encoding: { x, y: { value: 8 }, text: { field: 'label' } },
      },
    );
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `${options.metric[0]!.toUpperCase()}${options.metric.slice(1)} against ${options.param}`,
    width: options.width ?? 480,
    height: options.height ?? 280,
    config: baseConfig,
    layer: layers,
  } as TopLevelSpec;
}
