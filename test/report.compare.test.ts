/**
 * compare.html and sweep.html from synthetic run records: every run in the table with its link,
 * overlaid curves drawn (one train and one validation line per run), per-class bars, diverged
 * values kept and marked, labels escaped, the x scale chosen from the values.
 */
import { optionFlag } from '../src/train/schema.js';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareCurvesSpec, perClassCompareSpec, perClassRange, sweepChartSpec } from '../src/report/charts.js';
import { renderSvg } from '../src/report/render.js';
import {
  bestValAccuracy,
  buildComparisonReport,
  buildSweepReport,
  formatValue,
  runsTable,
  sweepScale,
  writeComparisonReport,
  type ComparedRun,
  type SweptRun,
} from '../src/report/compare.js';
import { perClassStats } from '../src/train/metrics.js';
import type { RunRecord } from '../src/train/types.js';
import { syntheticRun } from './helpers/report-fixture.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** name -> inline SVG of each chart figure. */
function chartSvgs(html: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of html.matchAll(/<figure class="chart" id="chart-([a-z-]+)" data-chart="[a-z-]+">(<svg[\s\S]*?<\/svg>)/g)) out.set(m[1]!, m[2]!);
  return out;
}

/** aria-labels of marks with a role description that have non-empty path data. */
function drawn(svg: string, role: string): string[] {
  const re = new RegExp(`<path aria-label="([^"]*)"[^>]*aria-roledescription="${role}"[^>]*\\sd="M[^"]+"`, 'g');
  return [...svg.matchAll(re)].map((m) => m[1]!);
}

/** The results-table rows: data-run -> data-status. */
function tableRows(html: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const m of html.matchAll(/<tr class="[^"]*" data-run="([^"]*)" data-status="([^"]*)">/g)) rows.set(m[1]!, m[2]!);
  return rows;
}

function withRecord(label: string, record: RunRecord, status = record.stopReason as string): ComparedRun {
  return { label, status, record, reportHref: `${label}/report.html` };
}

describe('compare.html', () => {
  const a = syntheticRun({ epochs: 6, prelu: false }).record;
  const b = syntheticRun({ epochs: 4, prelu: true }).record;
  // b differs in activation; make its numbers differ too so the table is not trivially equal.
  b.test = { ...b.test!, accuracy: 0.5 };
  const diverged = syntheticRun({ epochs: 2, prelu: false, stopReason: 'diverged', stopMessage: 'the loss became NaN in epoch 3' }).record;
  const runs: ComparedRun[] = [
    withRecord('relu', a),
    withRecord('prelu', b),
    withRecord('big lr', diverged),
    { label: 'never', status: 'not run', record: null, reportHref: null },
  ];
  let html: string;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'densetrain-compare-report-'));
    dirs.push(dir);
    // The CLI names settings by its flags (report/ itself knows only config keys).
    const path = await writeComparisonReport(dir, { varied: '--activation', runs, settingName: optionFlag });
    expect(path).toBe(join(dir, 'compare.html'));
    html = await readFile(path, 'utf8');
  });

  it('lists every run with its status and a relative link to its report', () => {
    expect([...tableRows(html)]).toEqual([
      ['relu', 'completed'],
      ['prelu', 'completed'],
      ['big lr', 'diverged'],
      ['never', 'not run'],
    ]);
    for (const label of ['relu', 'prelu', 'big lr']) expect(html).toContain(`href="${label}/report.html"`);
    expect(html).not.toContain('href="never/report.html"');
    expect(html).toContain('the loss became NaN in epoch 3');
    // Best test accuracy is tagged on the best completed run (relu, not prelu at 50%).
    const reluRow = /<tr class="completed" data-run="relu"[\s\S]*?<\/tr>/.exec(html)![0];
    expect(reluRow).toContain('<span class="tag">best</span>');
    expect(reluRow).toContain(`${(bestValAccuracy(a)! * 100).toFixed(2)}%`);
    expect(reluRow).toContain('6 / 6');
    expect(html).toMatch(/2 of 4 runs did not finish normally/);
  });

  it('draws a train and a validation curve per run with epochs, in loss and accuracy', () => {
    const charts = chartSvgs(html);
    expect([...charts.keys()]).toEqual(['compare-loss', 'compare-accuracy', 'per-class']);
    for (const name of ['compare-loss', 'compare-accuracy']) {
      const lines = drawn(charts.get(name)!, 'line mark');
      for (const run of ['relu', 'prelu', 'big lr']) {
        for (const split of ['train', 'validation']) {
          expect(lines.filter((l) => l.includes(`run: ${run};`) && l.endsWith(`split: ${split}`)), `${name} ${run} ${split}`).toHaveLength(1);
        }
      }
      expect(lines.some((l) => l.includes('run: never'))).toBe(false);
    }
    // One epoch point per run, split and epoch.
    expect(drawn(charts.get('compare-loss')!, 'point')).toHaveLength(2 * (6 + 4 + 2));
  });

  it('shows per-class test accuracy of each run side by side (dots and a heat table)', () => {
    const dots = drawn(chartSvgs(html).get('per-class')!, 'point');
    expect(dots).toHaveLength(3 * 10);
    const reluStats = perClassStats(a.test!.confusion);
    const dot3 = dots.find((l) => l.startsWith('class: 3;') && l.includes('run: relu'))!;
    expect(dot3).toContain(`test accuracy (recall): ${(reluStats[3]!.accuracy * 100).toFixed(0)}%`);
    const heat = /<table class="grid num heat">[\s\S]*?<\/table>/.exec(html)![0];
    expect(heat.match(/<tr><th scope="row">/g)).toHaveLength(10);
    expect(heat).toContain(`${(reluStats[3]!.accuracy * 100).toFixed(1)}%`);
  });

  it('lists the settings that differ', () => {
    const diff = /<table class="grid diff">[\s\S]*?<\/table>/.exec(html)![0];
    expect(diff).toContain('--activation');
    expect(diff).toContain('--epochs');
    expect(diff).not.toContain('--lr');
  });

  it('writes the chart SVGs next to the page', () => {
    for (const f of ['compare-loss.svg', 'compare-accuracy.svg', 'per-class.svg']) expect(existsSync(join(dir, 'charts', f)), f).toBe(true);
  });

  it('escapes run labels', async () => {
    const { html: page } = await buildComparisonReport({ varied: 'x', runs: [withRecord('<b>x</b>', a), withRecord('"y"', b)] });
    expect(page).not.toContain('<b>x</b>');
    expect(page).toContain('&lt;b&gt;x&lt;/b&gt;');
  });

  it('prints the same table in the terminal', () => {
    const text = runsTable(runs);
    expect(text).toMatch(/relu +│ +[\d.]+% +│ +[\d.]+% +│ +[\d.]+ +│ +6\/6 +│ +[\d.]+ +│ +completed/);
    expect(text).toMatch(/big lr .*│ +diverged/);
    expect(text).toMatch(/never +│ +– +│ +– +│ +– +│ +0 +│ +– +│ +not run/);
  });
});

describe('sweep.html', () => {
  const values = [1e-3, 1e-2, 1e-1, 1e6];
  const runs: SweptRun[] = values.map((value, i) => {
    const diverging = value === 1e6;
    const { record } = syntheticRun({ epochs: diverging ? 1 : 3, prelu: false, ...(diverging ? { stopReason: 'diverged', stopMessage: 'the loss became NaN' } : {}) });
    record.config.lr = value;
    record.test = { ...record.test!, loss: 0.5 - i * 0.1, accuracy: 0.8 + i * 0.05 };
    return { ...withRecord(`lr=${formatValue(value)}`, record), value };
  });
  let html: string;
  beforeAll(async () => {
    html = (await buildSweepReport({ param: 'lr', scale: sweepScale(values, true), runs })).html;
  });

  it('keeps the diverged value in the table', () => {
    expect([...tableRows(html)]).toEqual([
      ['lr=0.001', 'completed'],
      ['lr=0.01', 'completed'],
      ['lr=0.1', 'completed'],
      ['lr=1e6', 'diverged'],
    ]);
    expect(html).toMatch(/<tr class="diverged"[^>]*><th scope="row">.*1e6.*<\/th>/);
  });

  it('plots test loss and accuracy against the value, the diverged value as a marked cross', () => {
    const charts = chartSvgs(html);
    for (const [name, metric] of [
      ['sweep-loss', 'test loss'],
      ['sweep-accuracy', 'test accuracy'],
    ] as const) {
      const svg = charts.get(name)!;
      expect(drawn(svg, 'line mark'), name).toHaveLength(1);
      const points = drawn(svg, 'point');
      // The three finished values on the line, each with its metric; the diverged one without.
      expect(points.filter((p) => p.includes(`${metric}:`))).toHaveLength(3);
      const cross = points.filter((p) => !p.includes(`${metric}:`));
      expect(cross).toEqual(['lr: 1e+6']);
      expect(svg).toMatch(/<text[^>]*aria-label="lr: 1e\+6; label: diverged"[^>]*>diverged<\/text>/);
      expect(svg.match(/<line aria-label="lr: 1e\+6"[^>]*aria-roledescription="rule mark"[^>]*y2="[1-9]/g)).toHaveLength(1);
    }
  });

  it('uses a log x axis for values spanning decades (ticks 0.001 ... 1000000)', () => {
    const svg = chartSvgs(html).get('sweep-loss')!;
    expect(svg).toContain('>0.001</text>');
    expect(svg).toContain('>1000000</text>');
  });
});

describe('sweep scale and value formatting', () => {
  it('chooses log, symlog or linear', () => {
    expect(sweepScale([1e-3, 1e-2, 1e-1], true)).toBe('log');
    expect(sweepScale([0, 1e-4, 1e-2], true)).toBe('symlog');
    expect(sweepScale([0.01, 0.02, 0.05], true)).toBe('linear');
    expect(sweepScale([1e-3, 1], false)).toBe('linear');
    expect(sweepScale([-0.5, 0, 3], true)).toBe('linear');
  });

  it('formats values as typed', () => {
    expect(formatValue(0.001)).toBe('0.001');
    expect(formatValue(1e-6)).toBe('1e-6');
    expect(formatValue(1e6)).toBe('1e6');
    expect(formatValue(2.5e-4)).toBe('2.5e-4');
    expect(formatValue(-0.5)).toBe('-0.5');
    expect(formatValue(64)).toBe('64');
  });

  it('a sweep chart of only diverged values still renders a spec with the crosses', () => {
    const spec = sweepChartSpec([{ value: 1, metric: null, diverged: true }], { param: 'lr', metric: 'test loss', scale: 'linear' }) as { layer: unknown[] };
    expect(spec.layer).toHaveLength(4);
  });

  it('the train (solid) / validation (dashed) legend draws its lines', async () => {
    const { record } = syntheticRun({ epochs: 3, prelu: false });
    const spec = compareCurvesSpec([{ label: 'a', record }], 'loss');
    const svg = await renderSvg(spec);
    // The legend's two symbols: strokes with the split's dash, in a visible colour and width.
    const symbols = [...svg.matchAll(/<g class="mark-symbol role-legend-symbol"[^>]*><path ([^>]*)\/>/g)].map((m) => m[1]!).filter((p) => p.includes('stroke-dasharray'));
    expect(symbols).toHaveLength(2);
    for (const attrs of symbols) {
      expect(attrs).toMatch(/ stroke="#3c4350"/);
      expect(attrs).toMatch(/ stroke-width="2"/);
      expect(attrs).toMatch(/ d="M-?[\d.]+,0L[\d.]+,0"/);
    }
    expect(symbols.map((s) => /stroke-dasharray="([^"]+)"/.exec(s)![1])).toEqual(['1,0', '6,4']);
  });

  it('per-class accuracy: the scale fits the runs that learned; a collapsed run sits on the bottom edge as off the scale', async () => {
    const learned = [0.99, 0.97, 0.93, 0.91, 0.95, 0.94, 0.98, 0.96, 0.9, 0.92];
    const other = learned.map((v) => v - 0.02);
    const collapsed = [1, 0, 0, 0, 0.3, 0, 0, 0, 0, 0];
    expect(perClassRange([...learned, ...other, ...collapsed])).toEqual({ min: 0.87, max: 1 });
    expect(perClassRange(learned)).toEqual({ min: 0.89, max: 1 });
    expect(perClassRange([])).toEqual({ min: 0, max: 1 });
    const names = learned.map((_, c) => String(c));
    const spec = perClassCompareSpec(
      [
        { label: 'a', accuracies: learned },
        { label: 'b', accuracies: other },
        { label: 'c', accuracies: collapsed },
      ],
      names,
    ) as any;
    expect(spec.layer[0].mark.type).toBe('point');
    expect(spec.layer[0].encoding.y.scale.domain).toEqual([0.87, 1]);
    expect(spec.layer[0].data.values).toHaveLength(21);
    expect(spec.layer[1].mark.shape).toBe('triangle-down');
    expect(spec.layer[2].data.values.map((v: { label: string }) => v.label)).toEqual(['0.0%', '0.0%', '0.0%', '30.0%', '0.0%', '0.0%', '0.0%', '0.0%', '0.0%']);
    const svg = await renderSvg(spec);
    expect(svg).toMatch(/aria-label="Y-axis titled 'test accuracy \(recall\)' for a linear scale with values from 87% to 100%"/);
  });

  it('overlaid loss uses a log axis when losses span more than 30x', () => {
    const { record } = syntheticRun({ epochs: 3, prelu: false });
    const big = structuredClone(record);
    big.epochs = big.epochs.map((e) => ({ ...e, trainLoss: e.trainLoss * 100, valLoss: e.valLoss! * 100 }));
    const spec = compareCurvesSpec([{ label: 'a', record }, { label: 'b', record: big }], 'loss') as any;
    expect(spec.encoding.y.scale.type).toBe('log');
    const same = compareCurvesSpec([{ label: 'a', record }], 'loss') as any;
    expect(same.encoding.y.scale.type).toBeUndefined();
  });
});
