/**
 * tune.html: a tune's leaderboard as the seed study's table (model structure, epochs, learning
 * rate, L2, best validation accuracy, final test accuracy; 1st, 2nd and 3rd marked; each
 * trial's report linked), the best validation accuracy of every trial against each searched
 * parameter, and every trial's validation curve on one chart, pruned trials ending at their
 * rung with a cross. Self-contained like the other pages: inline CSS and SVG, no scripts.
 * It lives beside tune.ts (it reads tune.json's shapes) and builds on report/'s page parts:
 * experiments sit above report in the layer order (a trial writes its run's report).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import type { TrialSummary, TuneFile } from './tune.js';
import type { RunRecord } from '../train/types.js';
import { formatSpread } from '../train/spread.js';
import { formatPercent, formatSetting, MISSING, plural } from '../format.js';
import { baseConfig, PALETTE, percentFormat } from '../report/charts.js';
import { chart, escapeHtml, pageShell, type ChartBlock } from '../report/html.js';
import { chartBlock } from '../report/render.js';
import { writePage } from '../report/compare.js';

const STATUS_COLORS: Record<string, string> = {
  completed: PALETTE.smoothed,
  pruned: '#9aa3af',
  diverged: PALETTE.test,
  failed: '#7f1d1d',
  interrupted: PALETTE.train,
  running: PALETTE.train,
  pending: '#d9dde3',
};
const STATUSES = Object.keys(STATUS_COLORS);


/** One trial's validation accuracy per epoch, from its metrics.json (none if it has no record yet). */
async function curveOf(outDir: string, trial: TrialSummary): Promise<{ epoch: number; acc: number }[]> {
  try {
    const record = JSON.parse(await readFile(join(outDir, trial.runDir, 'metrics.json'), 'utf8')) as RunRecord;
    return record.epochs.filter((e) => e.valAccuracy !== null && Number.isFinite(e.valAccuracy)).map((e) => ({ epoch: e.epoch, acc: e.valAccuracy! }));
  } catch {
    return [];
  }
}

/** Every trial's validation accuracy per epoch, coloured by how it ended; a cross where a pruned trial stopped; dashed rules at the rungs. */
export function tuneCurvesSpec(curves: { id: string; status: string; points: { epoch: number; acc: number }[] }[], rungs: number[], width = 1000, height = 340): TopLevelSpec {
  const values = curves.flatMap((c) => c.points.map((p) => ({ trial: c.id, status: c.status, epoch: p.epoch, acc: p.acc })));
  const ends = curves.filter((c) => c.status === 'pruned' && c.points.length > 0).map((c) => ({ trial: c.id, status: c.status, ...c.points[c.points.length - 1]! }));
  const used = STATUSES.filter((s) => curves.some((c) => c.status === s));
  const color = { field: 'status', type: 'nominal', title: 'trial', scale: { domain: used, range: used.map((s) => STATUS_COLORS[s]) } };
  const x = { field: 'epoch', type: 'quantitative', title: 'epoch', scale: { zero: false, nice: false }, axis: { tickMinStep: 1, format: 'd' } };
  const y = { field: 'acc', type: 'quantitative', title: 'validation accuracy', scale: { zero: false }, axis: { format: percentFormat(values.map((v) => v.acc)) } };
  const layer: unknown[] = [
    { data: { values: rungs.map((epoch) => ({ epoch })) }, mark: { type: 'rule', strokeDash: [4, 4], color: '#9aa3af' }, encoding: { x: { field: 'epoch', type: 'quantitative' } } },
    { data: { values }, mark: { type: 'line', strokeWidth: 1.8, opacity: 0.85, point: { size: 22, filled: true } }, encoding: { x, y, color, detail: { field: 'trial' } } },
  ];
  if (ends.length > 0) layer.push({ data: { values: ends }, mark: { type: 'point', shape: 'cross', size: 120, filled: true, color: PALETTE.test }, encoding: { x, y } });
  return { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title: 'Validation accuracy of every trial', width, height, config: baseConfig, layer } as TopLevelSpec;
}

/** Best validation accuracy of every trial against one searched parameter (log x for log ranges, categories for choices). */
export function tuneParamSpec(key: string, points: { value: unknown; acc: number; status: string }[], scale: 'nominal' | 'linear' | 'log', width = 300, height = 220): TopLevelSpec {
  const values = points.map((p) => ({ x: scale === 'nominal' ? formatSetting(p.value) : p.value, acc: p.acc, status: p.status }));
  const order = [...new Set(points.map((p) => p.value))].sort((a, b) => (typeof a === 'number' && typeof b === 'number' ? a - b : 0)).map((v) => formatSetting(v));
  const used = STATUSES.filter((s) => points.some((p) => p.status === s));
  const x =
    scale === 'nominal'
      ? { field: 'x', type: 'nominal', title: key, sort: order, axis: { labelAngle: values.some((v) => String(v.x).length > 6) ? -30 : 0 } }
      : { field: 'x', type: 'quantitative', title: key, scale: scale === 'log' ? { type: 'log' } : { zero: false, padding: 12 }, axis: { format: '~g' } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `against ${key}`,
    width,
    height,
    config: baseConfig,
    data: { values },
    mark: { type: 'point', filled: true, size: 60, opacity: 0.9 },
    encoding: {
      x,
      y: { field: 'acc', type: 'quantitative', title: 'best validation accuracy', scale: { zero: false }, axis: { format: percentFormat(values.map((v) => v.acc)) } },
      color: { field: 'status', type: 'nominal', title: 'trial', scale: { domain: used, range: used.map((s) => STATUS_COLORS[s]) } },
    },
  } as TopLevelSpec;
}

const PLACES = ['1st', '2nd', '3rd'];

/** With repeats: each seed's report, and how many completed or diverged. */
function seedLinks(t: TrialSummary): string {
  if (!t.repeats || !t.stats) return '';
  const links = t.repeats.map((r) => (r.report ? `<a href="${escapeHtml(r.report)}">${escapeHtml(r.seed)}</a>` : `${escapeHtml(r.seed)} (${escapeHtml(r.status)})`)).join(' ');
  const diverged = t.stats.diverged ? `, ${t.stats.diverged} diverged` : '';
  return `<small>n = ${escapeHtml(t.stats.testAccuracy.n)} of ${escapeHtml(t.stats.repeats)} seeds${escapeHtml(diverged)}: ${links}</small>`;
}

function leaderboardTable(file: TuneFile): string {
  const byId = new Map(file.trials.map((t) => [t.id, t]));
  const ranked = file.leaderboard.map((id) => byId.get(id)!).filter(Boolean);
  const unranked = file.trials.filter((t) => !file.leaderboard.includes(t.id));
  const searched = [...new Set(file.trials.flatMap((t) => Object.keys(t.settings)))].filter((k) => !['layers', 'activation', 'lr', 'l2', 'epochs'].includes(k));
  const head = ['rank', 'trial', 'model structure', 'epochs', 'learning rate', 'L2', ...searched, 'validation accuracy', 'best validation accuracy', 'final test accuracy', 'status'];
  const row = (t: TrialSummary, rank: number | null): string => {
    const place = rank !== null && rank < 3 ? ` <span class="tag place">${PLACES[rank]}</span>` : '';
    const prune = t.status === 'pruned' ? t.rungs.at(-1) : undefined;
    const statusNote = prune ? `<small>at epoch ${prune.epoch}: rank ${prune.rank} of ${prune.of}</small>` : t.error ? `<small>${escapeHtml(t.error)}</small>` : '';
    const name = t.report ? `<a href="${escapeHtml(t.report)}">${escapeHtml(t.id)}</a>` : escapeHtml(t.id);
    const cells = [
      `<td>${rank === null ? MISSING : rank + 1}${place}</td>`,
      `<th scope="row">${name}</th>`,
      `<td class="text">${escapeHtml(`${t.config.layers.join('-')} ${t.config.activation}`)}</td>`,
      `<td>${escapeHtml(`${t.epochs} / ${t.config.epochs}`)}</td>`,
      `<td>${escapeHtml(formatSetting(t.config.lr))}</td>`,
      `<td>${escapeHtml(formatSetting(t.config.l2))}</td>`,
      ...searched.map((k) => `<td>${escapeHtml(formatSetting(t.settings[k]))}</td>`),
      `<td>${escapeHtml(t.stats ? formatSpread(t.stats.keptValAccuracy, { percent: true }) : formatPercent(t.keptValAccuracy ?? null))}</td>`,
      `<td>${escapeHtml(t.stats ? formatSpread(t.stats.bestValAccuracy, { percent: true }) : formatPercent(t.bestValAccuracy))}</td>`,
      `<td>${escapeHtml(t.stats ? formatSpread(t.stats.testAccuracy, { percent: true }) : formatPercent(t.testAccuracy))}${seedLinks(t)}</td>`,
      `<td class="stop">${escapeHtml(t.status)}${statusNote}</td>`,
    ];
    return `<tr class="${escapeHtml(t.status)}${rank !== null && rank < 3 ? ' podium' : ''}" data-trial="${escapeHtml(t.id)}" data-status="${escapeHtml(t.status)}">${cells.join('')}</tr>`;
  };
  const rows = [...ranked.map((t, i) => row(t, i)), ...unranked.map((t) => row(t, null))];
  return `<table class="grid num trials"><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>
<p class="note">Ranked by the validation accuracy of each trial's kept weights: its epoch with the lowest validation loss, the model the run keeps (with repeats, the mean ± std over the seeds that completed). Best validation accuracy: the highest of any epoch. Final test accuracy: the kept weights on the test set; it is shown, never used to rank or prune. ASHA prunes on the best validation accuracy so far at each rung.</p>`;
}

const EXTRA_STYLE = `
table.trials td.text{text-align:left}
table.trials td:first-child{white-space:nowrap}
table.trials td.stop{text-align:left}
table.trials td.stop small,table.trials td small{display:block;color:var(--muted);font-size:11px}
tr.podium td,tr.podium th{background:#eef5fc}
tr.pruned td,tr.pruned th{color:var(--muted)}
tr.failed td,tr.diverged td{background:#fdecea}
.tag.place{background:#d4a017}
.cols{display:flex;flex-wrap:wrap;gap:12px}
a{color:var(--accent)}
`;


export async function buildTuneReport(outDir: string, file: TuneFile): Promise<{ html: string; charts: ChartBlock[] }> {
  const { settings, trials } = file;
  const charts: ChartBlock[] = [];
  const curves = await Promise.all(trials.map(async (t) => ({ id: t.id, status: t.status, points: await curveOf(outDir, t) })));
  const withCurves = curves.filter((c) => c.points.length > 0);
  const sections: string[] = [`<section id="leaderboard"><h2>Leaderboard</h2>${leaderboardTable(file)}</section>`];
  const pruned = trials.filter((t) => t.status === 'pruned').length;
  if (withCurves.length > 0) {
    const rungText = file.rungs.length ? ` Dashed lines: ASHA rungs (epochs ${file.rungs.join(', ')}); a red cross marks where a pruned trial stopped (${pruned} pruned).` : '';
    const c = await chartBlock('tune-curves', 'Validation accuracy of every trial', tuneCurvesSpec(withCurves, file.rungs), `Validation accuracy after each epoch, one line per trial.${rungText}`);
    charts.push(c);
    sections.push(`<section id="curves"><h2>Validation curves</h2>${chart(c)}</section>`);
  }
  const scored = trials.filter((t) => t.bestValAccuracy !== null);
  const space = (settings.space ?? {}) as Record<string, unknown>;
  const params: ChartBlock[] = [];
  for (const key of Object.keys(space)) {
    const spec = space[key];
    // A list of choices is categories (even numbers: 64, 128, 256 read better as such); a range is an axis.
    const range = typeof spec === 'object' && spec !== null && !Array.isArray(spec);
    const scale = !range ? 'nominal' : (spec as { log?: boolean }).log === true ? 'log' : 'linear';
    const points = scored.map((t) => ({ value: t.settings[key], acc: t.bestValAccuracy!, status: t.status }));
    params.push(await chartBlock(`tune-param-${key}`, `against ${key}`, tuneParamSpec(key, points, scale), `Best validation accuracy of each trial against ${key}.`));
  }
  if (params.length > 0 && scored.length > 0) {
    charts.push(...params);
    sections.push(`<section id="parameters"><h2>Validation accuracy against each searched parameter</h2><div class="cols">${params.map(chart).join('')}</div></section>`);
  }
  const counts = STATUSES.map((s) => [s, trials.filter((t) => t.status === s).length] as const).filter(([, n]) => n > 0);
  const banner = file.interrupted
    ? `<div class="status warn" role="status">Interrupted: ${counts.map(([s, n]) => `${n} ${s}`).join(', ')}. Continue with <code>densetrain tune --resume</code> on this folder.</div>`
    : `<div class="status ok" role="status">${trials.length} trials: ${counts.map(([s, n]) => `${n} ${s}`).join(', ')}.</div>`;
  const subtitle = [
    settings.base.data,
    `${trials.length} trials (${settings.strategy}${settings.strategy === 'random' ? `, seed ${settings.base.seed}` : ''})`,
    settings.scheduler === 'asha' ? `ASHA: min ${plural(settings.minEpochs, 'epoch')}, reduction ${settings.reduction}` : 'no pruning',
    `up to ${settings.base.epochs} epochs`,
  ].join(' · ');
  const html = pageShell({ title: `densetrain tune: ${settings.base.data}`, subtitle, generatedAt: new Date().toISOString(), body: `${banner}\n${sections.join('\n')}`, extraStyle: EXTRA_STYLE });
  return { html, charts };
}

/** Writes outDir/tune.html (and its charts as SVG files); returns the page's path. */
export async function writeTuneReport(outDir: string, file: TuneFile): Promise<string> {
  return writePage(outDir, 'tune.html', await buildTuneReport(outDir, file));
}
