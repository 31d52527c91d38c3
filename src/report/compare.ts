/**
 * Reports over several runs: compare.html (`densetrain compare`: overlaid curves, a results
 * table, per-class test accuracy side by side, links to each run's report.html) and sweep.html
 * (`densetrain sweep`: test loss and accuracy against the swept value, diverged values marked,
 * the same table and curves). Self-contained like report.html: inline CSS and SVG, no scripts.
 * Also the terminal table both commands print.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Table from 'cli-table3';
import { formatLoss, formatNumber, formatPercent, formatSetting, MISSING } from '../format.js';
import { formatSpread, spread, spreadPerIndex, type Spread } from '../train/spread.js';
import { perClassStats } from '../train/metrics.js';
import { CONFIG_KEYS, type ConfigKey } from '../train/schema.js';
import type { RunRecord } from '../train/types.js';
import { compareCurvesSpec, perClassCompareSpec, runColors, sweepChartSpec, uniqueNames, type SweepScale } from './charts.js';
import { chart, escapeHtml, pageShell, type ChartBlock } from './html.js';
import { chartBlock } from './render.js';
import { withoutRowRules } from './terminal.js';
import { spreadChartSpec } from './spread-chart.js';

/** One run of a comparison or sweep, as the reports see it. */
export interface ComparedRun {
  label: string;
  /** How the run ended: a RunRecord stop reason, 'failed' (an error) or 'not run' (interrupted before it). */
  status: string;
  record: RunRecord | null;
  /** Its report.html relative to the comparison page (null when there is none). */
  reportHref: string | null;
  /** Why it failed. */
  error?: string | undefined;
  /** With --repeats: every seed's run (the first is the one above). */
  repeats?: RepeatedRun[];
}

export interface SweptRun extends ComparedRun {
  value: number;
}

/** One seed of a configuration trained several times (--repeats). */
export interface RepeatedRun {
  seed: number;
  status: string;
  record: RunRecord | null;
  reportHref: string | null;
}

/**
 * What a configuration's repeats give: mean, std, min, max and n of the test accuracy, best
 * validation accuracy, test loss and each layer's learned PReLU slope, over the repeats that
 * finished (completed or stopped early). Diverged and failed repeats are counted, never averaged.
 */
export interface RepeatStats {
  repeats: number;
  diverged: number;
  /** Failed, interrupted or not run. */
  unfinished: number;
  testAccuracy: Spread;
  bestValAccuracy: Spread;
  testLoss: Spread;
  /** Per hidden layer, the slope at the last epoch (null without prelu). */
  preluSlopes: Spread[] | null;
}

export function repeatStats(repeats: readonly RepeatedRun[]): RepeatStats {
  const finished = repeats.filter((r) => (r.status === 'completed' || r.status === 'early-stopping') && r.record);
  const slopes = finished.map((r) => r.record!.epochs.at(-1)?.preluSlopes).filter((v): v is number[] => Array.isArray(v));
  return {
    repeats: repeats.length,
    diverged: repeats.filter((r) => r.status === 'diverged').length,
    unfinished: repeats.filter((r) => !['completed', 'early-stopping', 'diverged'].includes(r.status)).length,
    testAccuracy: spread(finished.map((r) => r.record!.test?.accuracy)),
    bestValAccuracy: spread(finished.map((r) => bestValAccuracy(r.record))),
    testLoss: spread(finished.map((r) => r.record!.test?.loss)),
    preluSlopes: slopes.length ? spreadPerIndex(slopes) : null,
  };
}

export interface ComparisonInput {
  title?: string;
  /** What differs between the runs, for the subtitle, in the caller's words: '--activation', '--config files'. */
  varied: string;
  runs: ComparedRun[];
  /** How a setting is named in the "settings that differ" table (the CLI passes its flags); default: the config key. */
  settingName?: (key: ConfigKey) => string;
}

export interface SweepInput {
  title?: string;
  /** The swept parameter as shown on axes: 'lr', 'width of hidden layer 1'. */
  param: string;
  scale: SweepScale;
  runs: SweptRun[];
}

/** The numbers every table shows for a run. */
export interface RunSummary {
  label: string;
  status: string;
  bestValAccuracy: number | null;
  testAccuracy: number | null;
  testLoss: number | null;
  epochsRun: number;
  epochsPlanned: number | null;
  seconds: number | null;
  stopMessage: string | null;
}

/** Highest validation accuracy over the epochs run (null without a validation split). */
export function bestValAccuracy(record: RunRecord | null): number | null {
  const values = (record?.epochs ?? []).map((e) => e.valAccuracy).filter((v): v is number => v !== null && Number.isFinite(v));
  return values.length ? Math.max(...values) : null;
}

export function summarizeRun(run: ComparedRun): RunSummary {
  const r = run.record;
  return {
    label: run.label,
    status: run.status,
    bestValAccuracy: bestValAccuracy(r),
    testAccuracy: r?.test?.accuracy ?? null,
    testLoss: r?.test?.loss ?? null,
    epochsRun: r?.epochs.length ?? 0,
    epochsPlanned: r?.config.epochs ?? null,
    seconds: r?.seconds ?? null,
    stopMessage: r?.stopMessage ?? run.error ?? null,
  };
}


/** A swept value as typed-looking text: 0.001, 1e-6, 64. */
export function formatValue(v: number): string {
  if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e6)) return v.toExponential().replace(/\.?0+e/, 'e').replace('e+', 'e');
  return String(Number(v.toPrecision(6)));
}

// ---------------------------------------------------------------------------------------------
// Terminal

/**
 * The results table both commands print: one row per run (a sweep adds its value as the first
 * column), best validation accuracy, final test accuracy and loss, epochs run, seconds, stop reason.
 */
export function runsTable(runs: (ComparedRun | SweptRun)[], options: { valueTitle?: string } = {}): string {
  const valueColumn = options.valueTitle !== undefined;
  if (hasRepeats(runs)) return repeatsTable(runs, options);
  const table = new Table({
    head: [valueColumn ? options.valueTitle! : 'run', 'best val acc', 'test acc', 'test loss', 'epochs', 'seconds', 'stop reason'],
    style: { head: [], border: [] },
    colAligns: [valueColumn ? 'right' : 'left', 'right', 'right', 'right', 'right', 'right', 'left'],
  });
  for (const run of runs) {
    const s = summarizeRun(run);
    table.push([
      valueColumn ? formatValue((run as SweptRun).value) : s.label,
      formatPercent(s.bestValAccuracy),
      formatPercent(s.testAccuracy),
      formatLoss(s.testLoss),
      s.epochsPlanned === null ? String(s.epochsRun) : `${s.epochsRun}/${s.epochsPlanned}`,
      formatNumber(s.seconds, 1),
      s.status,
    ]);
  }
  return withoutRowRules(table.toString());
}

/** Some configuration was trained with several seeds. */
export function hasRepeats(runs: readonly ComparedRun[]): boolean {
  return runs.some((r) => (r.repeats?.length ?? 0) > 1);
}

const range = (s: Spread, percent: boolean): string =>
  s.min === null || s.max === null ? MISSING : percent ? `${(s.min * 100).toFixed(2)}–${(s.max * 100).toFixed(2)}%` : `${s.min.toFixed(4)}–${s.max.toFixed(4)}`;

/** PReLU slopes per hidden layer as "layer 1: 0.213 ± 0.011; layer 2: ...", or '–'. */
export function slopesText(slopes: Spread[] | null): string {
  if (!slopes) return MISSING;
  return slopes.map((s, i) => `layer ${i + 1}: ${formatSpread(s, { digits: 3 })}`).join('; ');
}

/**
 * With repeats: one row per configuration, mean ± std over its finished seeds (min–max beside
 * the test accuracy), how many seeds finished, how many diverged, and learned PReLU slopes.
 */
function repeatsTable(runs: (ComparedRun | SweptRun)[], options: { valueTitle?: string }): string {
  const valueColumn = options.valueTitle !== undefined;
  const stats = runs.map((r) => repeatStats(r.repeats ?? []));
  const prelu = stats.some((s) => s.preluSlopes !== null);
  const table = new Table({
    head: [valueColumn ? options.valueTitle! : 'run', 'seeds', 'best val acc', 'test acc', 'test acc range', 'test loss', 'diverged', ...(prelu ? ['prelu slopes'] : []), 'status'],
    style: { head: [], border: [] },
    colAligns: [valueColumn ? 'right' : 'left', 'right', 'right', 'right', 'right', 'right', 'right', ...(prelu ? (['left'] as const) : []), 'left'],
  });
  runs.forEach((run, i) => {
    const s = stats[i]!;
    table.push([
      valueColumn ? formatValue((run as SweptRun).value) : run.label,
      `${s.testAccuracy.n}/${s.repeats}`,
      formatSpread(s.bestValAccuracy, { percent: true }),
      formatSpread(s.testAccuracy, { percent: true }),
      range(s.testAccuracy, true),
      formatSpread(s.testLoss),
      String(s.diverged),
      ...(prelu ? [slopesText(s.preluSlopes)] : []),
      run.status,
    ]);
  });
  return `${withoutRowRules(table.toString())}\n(mean ± sample standard deviation over the seeds that finished; diverged seeds are counted, not averaged)`;
}

// ---------------------------------------------------------------------------------------------
// HTML


const EXTRA_STYLE = `
tr.diverged td,tr.failed td{background:#fdecea}
tr.diverged td.stop,tr.failed td.stop{color:var(--bad);font-weight:650}
tr.interrupted td.stop,tr.not-run td.stop{color:var(--warn);font-weight:650}
table.runs td.stop{text-align:left}
td.stop small{display:block;font-weight:400;color:var(--muted);white-space:normal;max-width:420px;}
table.heat td{min-width:70px}
table.diff th,table.diff td{text-align:left}
table.runs tbody th{white-space:nowrap}
table.repeats td.text{text-align:left}
table.repeats td.bad{color:var(--bad);font-weight:650}
a{color:var(--accent)}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:0}
`;

function page(title: string, subtitle: string, banner: string, sections: string[]): string {
  return pageShell({
    title,
    subtitle,
    generatedAt: new Date().toISOString(),
    body: `${banner}\n${sections.join('\n')}`,
    extraStyle: EXTRA_STYLE,
  });
}

/** A status banner when some run did not complete (diverged, failed, interrupted, not run). */
function banner(runs: ComparedRun[]): string {
  const problems = runs.filter((r) => r.status !== 'completed' && r.status !== 'early-stopping');
  if (problems.length === 0) {
    return `<div class="status ok" role="status">All ${runs.length} runs finished (completed or stopped early).</div>`;
  }
  const items = problems.map((r) => `${escapeHtml(r.label)}: <strong>${escapeHtml(r.status)}</strong>`).join('; ');
  return `<div class="status warn" role="status">${problems.length} of ${runs.length} runs did not finish normally: ${items}. They are kept in the table and charts.</div>`;
}

function statusCell(s: RunSummary): string {
  const detail = s.stopMessage && s.status !== 'completed' ? `<small>${escapeHtml(s.stopMessage)}</small>` : '';
  return `<td class="stop">${escapeHtml(s.status)}${detail}</td>`;
}

/** The results table: one row per run with a link to its report. */
function resultsTable(runs: (ComparedRun | SweptRun)[], valueTitle?: string): string {
  const colors = runColors(runs.length);
  const summaries = runs.map(summarizeRun);
  const bestTest = Math.max(...summaries.map((s) => (s.testAccuracy !== null && s.status !== 'diverged' ? s.testAccuracy : -1)));
  const head = [
    valueTitle ?? 'run',
    'best val acc',
    'test acc',
    'test loss',
    'epochs run',
    'seconds',
    'stop reason',
    'report',
  ];
  const rows = runs.map((run, i) => {
    const s = summaries[i]!;
    const best = s.testAccuracy !== null && s.testAccuracy === bestTest && bestTest >= 0;
    const cls = s.status.replace(/\s+/g, '-');
    const name = valueTitle !== undefined ? formatValue((run as SweptRun).value) : s.label;
    const link = run.reportHref ? `<a href="${escapeHtml(run.reportHref)}">report</a>` : MISSING;
    const cells = [
      `<th scope="row"><span class="swatch" style="background:${colors[i]}"></span>${
        run.reportHref ? `<a href="${escapeHtml(run.reportHref)}">${escapeHtml(name)}</a>` : escapeHtml(name)
      }</th>`,
      `<td>${escapeHtml(formatPercent(s.bestValAccuracy))}</td>`,
      `<td>${escapeHtml(formatPercent(s.testAccuracy))}${best && runs.length > 1 ? ' <span class="tag">best</span>' : ''}</td>`,
      `<td>${escapeHtml(formatLoss(s.testLoss))}</td>`,
      `<td>${escapeHtml(s.epochsPlanned === null ? String(s.epochsRun) : `${s.epochsRun} / ${s.epochsPlanned}`)}</td>`,
      `<td>${escapeHtml(formatNumber(s.seconds, 1))}</td>`,
      statusCell(s),
      `<td>${link}</td>`,
    ];
    return `<tr class="${escapeHtml(cls)}" data-run="${escapeHtml(s.label)}" data-status="${escapeHtml(s.status)}">${cells.join('')}</tr>`;
  });
  return `<table class="grid num runs"><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>
<p class="note">Best val acc: the highest validation accuracy of any epoch. Test acc and loss: the kept model (the epoch with the lowest validation loss) on the test set. A diverged run keeps its last good weights; its test numbers are those of that model.</p>`;
}

/** With repeats: the mean ± std table (each seed's report linked) and the spread chart. */
async function repeatsSection(runs: (ComparedRun | SweptRun)[], axis: { title: string; scale: 'nominal' | SweepScale }): Promise<{ section: string; charts: ChartBlock[] }> {
  if (!hasRepeats(runs)) return { section: '', charts: [] };
  const stats = runs.map((r) => repeatStats(r.repeats ?? []));
  const nominal = axis.scale === 'nominal';
  const name = (run: ComparedRun) => (nominal ? run.label : formatValue((run as SweptRun).value));
  const prelu = stats.some((st) => st.preluSlopes !== null);
  const head = [axis.title, 'seeds finished', 'best val acc', 'test acc', 'test acc range', 'test loss', 'diverged', ...(prelu ? ['learned PReLU slopes'] : []), 'runs'];
  const rows = runs.map((run, i) => {
    const st = stats[i]!;
    const links = (run.repeats ?? [])
      .map((r) => (r.reportHref ? `<a href="${escapeHtml(r.reportHref)}" data-status="${escapeHtml(r.status)}">seed ${escapeHtml(r.seed)}</a>` : `seed ${escapeHtml(r.seed)} (${escapeHtml(r.status)})`))
      .join(' ');
    const cells = [
      `<th scope="row">${escapeHtml(name(run))}</th>`,
      `<td>${escapeHtml(`${st.testAccuracy.n} / ${st.repeats}`)}</td>`,
      `<td>${escapeHtml(formatSpread(st.bestValAccuracy, { percent: true }))}</td>`,
      `<td>${escapeHtml(formatSpread(st.testAccuracy, { percent: true }))}</td>`,
      `<td>${escapeHtml(range(st.testAccuracy, true))}</td>`,
      `<td>${escapeHtml(formatSpread(st.testLoss))}</td>`,
      `<td class="${st.diverged ? 'bad' : ''}">${escapeHtml(st.diverged)}</td>`,
      ...(prelu ? [`<td class="text">${escapeHtml(slopesText(st.preluSlopes))}</td>`] : []),
      `<td class="text">${links}</td>`,
    ];
    return `<tr data-run="${escapeHtml(run.label)}">${cells.join('')}</tr>`;
  });
  const columns = runs.map((run) => {
    const finished = (run.repeats ?? []).filter((r) => (r.status === 'completed' || r.status === 'early-stopping') && r.record?.test);
    const st = repeatStats(run.repeats ?? []);
    return { x: nominal ? run.label : (run as SweptRun).value, values: finished.map((r) => r.record!.test!.accuracy), mean: st.testAccuracy.mean, std: st.testAccuracy.std };
  });
  const spreadChart = await chartBlock(
    'repeats-test-accuracy',
    'Test accuracy over seeds',
    spreadChartSpec(columns, { xTitle: axis.title, metric: 'test accuracy', scale: axis.scale }),
    'Each seed\'s test accuracy (grey), the mean (blue) and one sample standard deviation either side. Diverged seeds are left out of the mean and counted in the table.',
  );
  const n = Math.max(...stats.map((st) => st.repeats));
  const section = `<section id="repeats"><h2>Repeats: ${escapeHtml(n)} seeds per configuration</h2>${chart(spreadChart)}<table class="grid num repeats"><thead><tr>${head
    .map((h) => `<th>${escapeHtml(h)}</th>`)
    .join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>
<p class="note">Mean ± sample standard deviation over the seeds that finished (seed, seed+1, ...). The curves and per-class sections below show the first seed's run.</p></section>`;
  return { section, charts: [spreadChart] };
}

/** Settings that differ between the runs (rows: options, columns: runs). */
function differencesTable(runs: ComparedRun[], settingName: (key: ConfigKey) => string): string {
  const withRecord = runs.filter((r) => r.record !== null);
  if (withRecord.length < 2) return '';
  const keys = CONFIG_KEYS.filter((k) => new Set(withRecord.map((r) => JSON.stringify(r.record!.config[k] ?? null))).size > 1);
  if (keys.length === 0) return '';
  const head = `<tr><th>option</th>${withRecord.map((r) => `<th>${escapeHtml(r.label)}</th>`).join('')}</tr>`;
  const rows = keys.map((k) => `<tr><th scope="row">${escapeHtml(settingName(k))}</th>${withRecord.map((r) => `<td>${escapeHtml(formatSetting(r.record!.config[k], 6))}</td>`).join('')}</tr>`);
  return `<h3>Settings that differ</h3><table class="grid diff"><thead>${head}</thead><tbody>${rows.join('')}</tbody></table>`;
}

/** Per-class test accuracy of each run with a test evaluation. */
function perClassAccuracies(runs: ComparedRun[]): { label: string; accuracies: number[]; color: string }[] {
  const colors = runColors(runs.length);
  return runs
    .map((r, i) => ({ run: r, color: colors[i]! }))
    .filter(({ run }) => run.record?.test)
    .map(({ run, color }) => ({ label: run.label, color, accuracies: perClassStats(run.record!.test!.confusion).map((s) => s.accuracy) }));
}

/** Per-class accuracy as a heat table: classes down, runs across, darker = higher. */
function heatTable(data: { label: string; accuracies: number[] }[], classNames: string[]): string {
  const all = data.flatMap((d) => d.accuracies).filter(Number.isFinite);
  const lo = all.length ? Math.min(...all) : 0;
  const shade = (v: number): string => {
    const t = lo >= 1 ? 1 : Math.max(0, Math.min(1, (v - lo) / (1 - lo)));
    const mix = (a: number, b: number) => Math.round(a + (b - a) * t);
    const rgb = `rgb(${mix(0xf2, 0x1f)},${mix(0xf5, 0x5f)},${mix(0xf9, 0xa8)})`;
    return `background:${rgb};color:${t > 0.55 ? '#fff' : 'var(--ink)'}`;
  };
  const head = `<tr><th>class</th>${data.map((d) => `<th>${escapeHtml(d.label)}</th>`).join('')}</tr>`;
  const rows = classNames.map(
    (name, c) =>
      `<tr><th scope="row">${escapeHtml(name)}</th>${data
        .map((d) => {
          const v = d.accuracies[c];
          return v === undefined || !Number.isFinite(v) ? '<td>–</td>' : `<td style="${shade(v)}">${escapeHtml(formatPercent(v, 1))}</td>`;
        })
        .join('')}</tr>`,
  );
  return `<table class="grid num heat"><thead>${head}</thead><tbody>${rows.join('')}</tbody></table>`;
}

/** The curves and per-class sections both pages share. */
async function sharedSections(runs: ComparedRun[]): Promise<{ sections: string[]; charts: ChartBlock[] }> {
  const colors = runColors(runs.length);
  const withEpochs = runs
    .map((r, i) => ({ label: r.label, record: r.record, color: colors[i]! }))
    .filter((r): r is { label: string; record: RunRecord; color: string } => r.record !== null && r.record.epochs.length > 0);
  const sections: string[] = [];
  const charts: ChartBlock[] = [];
  if (withEpochs.length > 0) {
    const loss = await chartBlock(
      'compare-loss',
      'Loss per epoch',
      compareCurvesSpec(withEpochs, 'loss'),
      'Mean training loss of each epoch (solid) and validation loss after it (dashed), one colour per run. A diverged run ends at its last finite epoch.',
    );
    const acc = await chartBlock(
      'compare-accuracy',
      'Accuracy per epoch',
      compareCurvesSpec(withEpochs, 'accuracy'),
      'Training accuracy measured during each epoch (solid) and validation accuracy after it (dashed).',
    );
    charts.push(loss, acc);
    sections.push(`<section id="curves"><h2>Training curves</h2>${chart(loss)}${chart(acc)}</section>`);
  }
  const perClass = perClassAccuracies(runs);
  const classNames = runs.find((r) => r.record)?.record?.dataset.classNames ?? [];
  if (perClass.length > 0) {
    const classes = perClass[0]!.accuracies.length;
    const names = uniqueNames(classNames, classes);
    const bars = await chartBlock(
      'per-class',
      'Test accuracy per class',
      perClassCompareSpec(perClass, names),
      'Fraction of each class\'s test images classified correctly (recall), one dot per run, on a scale fitted to the runs that learned; a triangle on the bottom edge is an accuracy below the scale (its value beside it).',
    );
    charts.push(bars);
    sections.push(`<section id="per-class"><h2>Test accuracy per class</h2>${chart(bars)}${heatTable(perClass, names)}</section>`);
  }
  return { sections, charts };
}

export interface BuiltPage {
  html: string;
  charts: ChartBlock[];
}

export async function buildComparisonReport(input: ComparisonInput): Promise<BuiltPage> {
  const { runs } = input;
  const first = runs.find((r) => r.record)?.record;
  const title = input.title ?? `densetrain comparison: ${first?.dataset.name ?? 'runs'}`;
  const subtitle = [first?.dataset.name, `${runs.length} runs`, `varying ${input.varied}`, first ? `seed ${first.config.seed}` : undefined]
    .filter((s) => s !== undefined)
    .join(' · ');
  const shared = await sharedSections(runs);
  const repeats = await repeatsSection(runs, { title: 'run', scale: 'nominal' });
  const sections = [
    repeats.section,
    `<section id="runs"><h2>Runs</h2>${resultsTable(runs)}${differencesTable(runs, input.settingName ?? ((key) => key))}</section>`,
    ...shared.sections,
  ].filter((x) => x !== '');
  return { html: page(title, subtitle, banner(runs), sections), charts: [...repeats.charts, ...shared.charts] };
}

/** Writes outDir/compare.html (and outDir/charts/compare-*.svg); returns the page's path. */
export async function writeComparisonReport(outDir: string, input: ComparisonInput): Promise<string> {
  return writePage(outDir, 'compare.html', await buildComparisonReport(input));
}

/** The x scale for swept values: log when positive values span a decade or more (symlog if 0 is among them). */
export function sweepScale(values: number[], prefersLog: boolean): SweepScale {
  if (!prefersLog) return 'linear';
  const positive = values.filter((v) => v > 0);
  if (positive.length < 2 || values.some((v) => v < 0)) return 'linear';
  if (Math.max(...positive) / Math.min(...positive) < 10) return 'linear';
  return values.some((v) => v === 0) ? 'symlog' : 'log';
}

export async function buildSweepReport(input: SweepInput): Promise<BuiltPage> {
  const { runs } = input;
  const first = runs.find((r) => r.record)?.record;
  const title = input.title ?? `densetrain sweep: ${input.param}`;
  const subtitle = [first?.dataset.name, `${runs.length} values of ${input.param}`, first ? `seed ${first.config.seed}` : undefined]
    .filter((s) => s !== undefined)
    .join(' · ');
  const points = (metric: 'loss' | 'accuracy') =>
    runs
      .filter((r) => r.status !== 'not run')
      .map((r) => {
        if ((r.repeats?.length ?? 0) > 1) {
          // With repeats, the mean over the seeds that finished; diverged only if every seed diverged.
          const st = repeatStats(r.repeats!);
          return { value: r.value, diverged: st.testAccuracy.n === 0 && st.diverged > 0, metric: (metric === 'loss' ? st.testLoss : st.testAccuracy).mean };
        }
        return {
          value: r.value,
          diverged: r.status === 'diverged',
          metric: metric === 'loss' ? (r.record?.test?.loss ?? null) : (r.record?.test?.accuracy ?? null),
        };
      });
  const diverged = runs.filter((r) => r.status === 'diverged').length;
  const scaleNote = input.scale === 'linear' ? '' : ` The x axis is ${input.scale === 'log' ? 'logarithmic' : 'symmetric-logarithmic (0 included)'}.`;
  const repeated = hasRepeats(runs) ? ' With repeats: the mean over the seeds that finished (the spread is in the Repeats section).' : '';
  const caption = `Final model on the test set for each value.${repeated}${scaleNote}${diverged ? ' A red cross at the top marks a value whose training diverged.' : ''}`;
  const lossChart = await chartBlock('sweep-loss', 'Test loss', sweepChartSpec(points('loss'), { param: input.param, metric: 'test loss', scale: input.scale }), caption);
  const accChart = await chartBlock(
    'sweep-accuracy',
    'Test accuracy',
    sweepChartSpec(points('accuracy'), { param: input.param, metric: 'test accuracy', scale: input.scale }),
    caption,
  );
  const shared = await sharedSections(runs);
  const repeats = await repeatsSection(runs, { title: input.param, scale: input.scale });
  const sections = [
    `<section id="sweep"><h2>Test loss and accuracy against ${escapeHtml(input.param)}</h2><div class="cols">${chart(lossChart)}${chart(accChart)}</div></section>`,
    repeats.section,
    `<section id="runs"><h2>Runs</h2>${resultsTable(runs, input.param)}</section>`,
    ...shared.sections,
  ].filter((x) => x !== '');
  return { html: page(title, subtitle, banner(runs), sections), charts: [lossChart, accChart, ...repeats.charts, ...shared.charts] };
}

/** Writes outDir/sweep.html (and outDir/charts/sweep-*.svg); returns the page's path. */
export async function writeSweepReport(outDir: string, input: SweepInput): Promise<string> {
  return writePage(outDir, 'sweep.html', await buildSweepReport(input));
}

export async function writePage(outDir: string, file: string, built: BuiltPage): Promise<string> {
  const chartsDir = join(outDir, 'charts');
  await mkdir(chartsDir, { recursive: true });
  for (const c of built.charts) await writeFile(join(chartsDir, `${c.name}.svg`), `<?xml version="1.0" encoding="UTF-8"?>\n${c.svg}\n`);
  const path = join(outDir, file);
  await writeFile(path, built.html);
  return path;
}
