/**
 * Page assembly for report.html: one self-contained document (inline CSS, inline SVG charts,
 * PNG data: URIs; no scripts, no network). Every piece of text from the run goes through
 * escapeHtml; the only unescaped markup is the SVG produced by vega (which escapes its own text).
 */
import { formatBackend, formatCount, formatLoss, formatNumber, formatPercent, formatSeconds, MISSING, plural } from '../format.js';
import type { ClassStats } from '../train/metrics.js';
import type { EpochRecord, RunRecord, TrainConfig } from '../train/types.js';

/** Escapes text for HTML element content and for quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

export interface ChartBlock {
  /** File stem and DOM id: 'loss', 'confusion-counts', ... */
  name: string;
  title: string;
  /** SVG markup from vega (ids already made unique). */
  svg: string;
  caption?: string;
}

export interface ImageCard {
  /** data:image/png;base64,... or null for an empty slot. */
  src: string | null;
  index: number;
  lines: { label: string; value: string; tone?: 'good' | 'bad' }[];
}

export interface PageModel {
  title: string;
  record: RunRecord;
  testAccuracy: number | null;
  testLoss: number | null;
  testCount: number | null;
  charts: { loss: ChartBlock; accuracy: ChartBlock; prelu: ChartBlock | null; confusion: ChartBlock[] };
  classNames: string[];
  perClass: ClassStats[] | null;
  /** One entry per class: its top-k images. */
  topPerClass: { className: string; cards: ImageCard[] }[] | null;
  wrong: ImageCard[] | null;
  notes: string[];
  generatedAt: string;
}

function mean(values: number[]): number | null {
  const finite = values.filter(Number.isFinite);
  return finite.length ? finite.reduce((a, b) => a + b, 0) / finite.length : null;
}

/** The configuration as labelled rows, without the settings the chosen optimizer/schedule/activation ignore. */
export function configRows(config: TrainConfig): [string, string][] {
  const hidden = new Set<string>();
  if (config.optimizer === 'sgd') ['beta1', 'beta2', 'eps'].forEach((k) => hidden.add(k));
  if (config.optimizer === 'adam') ['momentum', 'nesterov'].forEach((k) => hidden.add(k));
  if (config.schedule !== 'step') ['stepSize', 'gamma'].forEach((k) => hidden.add(k));
  if (config.activation !== 'leaky_relu' && config.activation !== 'prelu') hidden.add('alpha');
  const labels: Record<string, string> = {
    data: 'data',
    layers: 'layers',
    activation: 'activation',
    alpha: config.activation === 'prelu' ? 'initial PReLU slope' : 'leaky ReLU slope',
    init: 'initialisation',
    optimizer: 'optimizer',
    lr: 'learning rate',
    momentum: 'momentum',
    nesterov: 'Nesterov',
    beta1: 'β1',
    beta2: 'β2',
    eps: 'ε',
    schedule: 'lr schedule',
    stepSize: 'step size (epochs)',
    gamma: 'step factor γ',
    l2: 'L2 λ',
    epochs: 'epochs',
    batchSize: 'batch size',
    valSplit: 'validation split',
    patience: 'early-stopping patience',
    seed: 'seed',
    standardize: 'standardise pixels',
    backend: 'backend requested',
    threads: 'threads requested',
  };
  const rows: [string, string][] = [];
  const entries = Object.entries(config);
  if (!('threads' in config)) entries.push(['threads', undefined]);
  for (const [key, value] of entries) {
    if (hidden.has(key)) continue;
    let text: string;
    if (key === 'layers' && Array.isArray(value)) text = value.join(' → ');
    else if (key === 'threads' && value === undefined) text = 'auto';
    else if (key === 'patience' && value === 0) text = 'off';
    else if (key === 'valSplit' && typeof value === 'number') text = value === 0 ? 'none' : formatPercent(value, 1);
    else if (typeof value === 'boolean') text = value ? 'yes' : 'no';
    else if (typeof value === 'number') text = formatNumber(value, 6);
    else if (value === undefined || value === null) text = MISSING;
    else text = typeof value === 'string' ? value : JSON.stringify(value);
    rows.push([labels[key] ?? key, text]);
  }
  return rows;
}

function kvTable(rows: [string, string][], cls = ''): string {
  return `<table class="kv ${cls}"><tbody>${rows
    .map(([k, v]) => `<tr><th scope="row">${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`)
    .join('')}</tbody></table>`;
}

function statusBanner(record: RunRecord): string {
  const ran = record.epochs.length;
  const best = `weights from epoch ${record.bestEpoch} (best validation loss) were kept`;
  const message = record.stopMessage ? `<p class="detail">${escapeHtml(record.stopMessage)}</p>` : '';
  switch (record.stopReason) {
    case 'completed':
      return `<div class="status ok" role="status" data-stop-reason="completed"><strong>Completed</strong> all ${escapeHtml(ran)} of ${escapeHtml(record.config.epochs)} epochs; ${escapeHtml(best)}.${message}</div>`;
    case 'early-stopping':
      return `<div class="status warn" role="status" data-stop-reason="early-stopping"><strong>Stopped early</strong> after epoch ${escapeHtml(ran)} of ${escapeHtml(record.config.epochs)}: validation loss did not improve for ${escapeHtml(record.config.patience)} epochs; ${escapeHtml(best)}.${message}</div>`;
    case 'diverged':
      return `<div class="status bad" role="alert" data-stop-reason="diverged"><strong>Training diverged</strong> after ${escapeHtml(ran)} completed epoch(s); ${escapeHtml(best)}.${message}</div>`;
    case 'interrupted':
      return `<div class="status bad" role="alert" data-stop-reason="interrupted"><strong>Training interrupted</strong> after ${escapeHtml(ran)} completed epoch(s); ${escapeHtml(best)}.${message}</div>`;
    default:
      return `<div class="status warn" role="status"><strong>Stop reason:</strong> ${escapeHtml(record.stopReason)}${message}</div>`;
  }
}

function card(label: string, value: string, sub = '', tone = ''): string {
  return `<div class="card ${tone}"><div class="card-label">${escapeHtml(label)}</div><div class="card-value">${escapeHtml(value)}</div>${
    sub ? `<div class="card-sub">${escapeHtml(sub)}</div>` : ''
  }</div>`;
}

export function chart(block: ChartBlock): string {
  return `<figure class="chart" id="chart-${escapeHtml(block.name)}" data-chart="${escapeHtml(block.name)}">${block.svg}${
    block.caption ? `<figcaption>${escapeHtml(block.caption)}</figcaption>` : ''
  }</figure>`;
}

function epochTable(record: RunRecord): string {
  const hasVal = record.epochs.some((e) => e.valLoss !== null);
  const head = ['epoch', 'lr', 'train loss', 'train acc', ...(hasVal ? ['val loss', 'val acc'] : []), 'seconds', 'samples/s'];
  const row = (e: EpochRecord): string => {
    const cells = [
      String(e.epoch),
      formatNumber(e.lr, 6),
      formatLoss(e.trainLoss),
      formatPercent(e.trainAccuracy),
      ...(hasVal ? [formatLoss(e.valLoss), formatPercent(e.valAccuracy)] : []),
      formatNumber(e.seconds, 2),
      formatCount(e.samplesPerSecond),
    ];
    const best = e.epoch === record.bestEpoch;
    return `<tr${best ? ' class="best" title="best epoch: these weights were kept"' : ''}>${cells
      .map((c, i) => `<td${i === 0 && best ? ' class="best-cell"' : ''}>${escapeHtml(c)}${i === 0 && best ? ' <span class="tag">best</span>' : ''}</td>`)
      .join('')}</tr>`;
  };
  const open = record.epochs.length <= 30 ? ' open' : '';
  return `<details class="epochs"${open}><summary>Per-epoch numbers (${escapeHtml(record.epochs.length)} epochs)</summary><table class="grid num"><thead><tr>${head
    .map((h) => `<th>${escapeHtml(h)}</th>`)
    .join('')}</tr></thead><tbody>${record.epochs.map(row).join('')}</tbody></table></details>`;
}

function perClassTableHtml(stats: ClassStats[], classNames: string[]): string {
  const meter = (v: number, cls: string): string =>
    `<div class="meter"><div class="bar ${cls}"><span style="width:${Math.max(0, Math.min(100, v * 100)).toFixed(1)}%"></span></div><span class="v">${escapeHtml(formatPercent(v))}</span></div>`;
  const f1 = (s: ClassStats): number => (s.precision + s.recall === 0 ? 0 : (2 * s.precision * s.recall) / (s.precision + s.recall));
  const rows = stats
    .map(
      (s, c) =>
        `<tr><th scope="row">${escapeHtml(classNames[c] ?? c)}</th><td>${escapeHtml(s.support)}</td><td>${meter(s.precision, 'p')}</td><td>${meter(s.recall, 'r')}</td><td>${escapeHtml(formatPercent(s.accuracy))}</td><td>${escapeHtml(formatNumber(f1(s), 3))}</td></tr>`,
    )
    .join('');
  return `<table class="grid num per-class"><thead><tr><th>class</th><th>support</th><th>precision</th><th>recall</th><th>accuracy</th><th>F1</th></tr></thead><tbody>${rows}</tbody></table>
<p class="note">Precision: of the test images predicted as the class, the fraction that belong to it. Recall (= per-class accuracy): of the images of the class, the fraction predicted correctly.</p>`;
}

function imageCard(c: ImageCard, cls = ''): string {
  const img =
    c.src === null
      ? `<div class="empty" aria-label="no image">–</div>`
      : `<img src="${escapeHtml(c.src)}" alt="test image #${escapeHtml(c.index)}" width="84" height="84">`;
  const lines = c.lines
    .map((l) => {
      const text = [l.label ? `<span>${escapeHtml(l.label)}</span>` : '', l.value ? `<b>${escapeHtml(l.value)}</b>` : ''].filter((t) => t !== '').join(' ');
      return `<div class="line${l.tone ? ` ${l.tone}` : ''}">${text}</div>`;
    })
    .join('');
  return `<figure class="digit ${cls}">${img}<figcaption>${lines}</figcaption></figure>`;
}

/** The report pages' stylesheet (also used by compare.html and sweep.html). */
/**
 * The page every densetrain report shares: one place for the Content-Security-Policy that keeps
 * a report free of scripts and network use, the style sheet, the header and the footer.
 */
export function pageShell(page: { title: string; subtitle: string; generatedAt: string; body: string; extraStyle?: string }): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>${escapeHtml(page.title)}</title>
<style>${STYLE}${page.extraStyle ?? ''}</style>
</head>
<body>
<header class="top"><div class="wrap"><h1>${escapeHtml(page.title)}</h1><div class="sub">${escapeHtml(page.subtitle)}</div></div></header>
<main>
${page.body}
</main>
<footer>Generated by densetrain on ${escapeHtml(page.generatedAt)}. Self-contained: no scripts, no network.</footer>
</body>
</html>
`;
}

const STYLE = `
:root{--ink:#1d2330;--muted:#5b6472;--line:#e3e7ed;--bg:#f5f7fa;--accent:#1f5fa8;--ok:#1e7b4f;--warn:#a15c00;--bad:#b3261e}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
header.top{background:#1d2330;color:#fff;padding:28px 0 24px}
header.top h1{margin:0 0 4px;font-size:24px;font-weight:650;letter-spacing:.2px}
header.top .sub{color:#b9c1cc;font-size:13px}
main,.wrap{max-width:1200px;margin:0 auto;padding:0 24px}
section{background:#fff;border:1px solid var(--line);border-radius:10px;padding:20px 24px;margin:20px 0}
section>h2{margin:0 0 14px;font-size:17px;font-weight:650}
h3{font-size:14px;margin:18px 0 8px;font-weight:650;color:var(--muted);text-transform:uppercase;letter-spacing:.5px}
.status{border-radius:10px;padding:14px 18px;margin:20px 0 0;border:1px solid;font-size:15px}
.status.ok{background:#eaf6ef;border-color:#b9e0c8;color:var(--ok)}
.status.warn{background:#fff5e6;border-color:#f3d19c;color:var(--warn)}
.status.bad{background:#fdecea;border-color:#f1b8b2;color:var(--bad);font-size:16px}
.status .detail{margin:6px 0 0;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px;color:var(--ink);white-space:pre-wrap}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:12px;margin:20px 0}
.card{background:#fff;border:1px solid var(--line);border-radius:10px;padding:12px 16px}
.card-label{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.5px}
.card-value{font-size:22px;font-weight:650;margin-top:2px;font-variant-numeric:tabular-nums}
.card-sub{font-size:12px;color:var(--muted)}
.card.hero .card-value{color:var(--accent)}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:8px 32px}
table{border-collapse:collapse;width:100%}
table.kv th{text-align:left;font-weight:500;color:var(--muted);padding:5px 12px 5px 0;width:48%;vertical-align:top}
table.kv td{padding:5px 0;font-variant-numeric:tabular-nums;word-break:break-word}
table.kv tr+tr th,table.kv tr+tr td{border-top:1px solid var(--line)}
table.grid th,table.grid td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:right;font-variant-numeric:tabular-nums}
table.grid thead th{color:var(--muted);font-weight:600;font-size:12px;text-transform:uppercase;letter-spacing:.4px;border-bottom:2px solid var(--line)}
table.grid th:first-child,table.grid td:first-child{text-align:left}
table.grid tbody th{font-weight:600}
tr.best td{background:#eef4fb}
.tag{display:inline-block;background:var(--accent);color:#fff;border-radius:4px;font-size:10px;padding:0 5px;margin-left:4px;vertical-align:1px;text-transform:uppercase}
.meter{display:flex;align-items:center;justify-content:flex-end;gap:10px}
.meter .v{min-width:58px}
.bar{width:120px;height:6px;background:#eef0f3;border-radius:3px;overflow:hidden}
.bar span{display:block;height:100%;background:var(--accent)}
.bar.r span{background:#2a9d8f}
table.per-class td{min-width:110px}
figure{margin:0}
figure.chart{margin:6px 0 18px;overflow-x:auto}
figure.chart svg{display:block;max-width:100%;height:auto}
figure.chart figcaption,.note{color:var(--muted);font-size:12.5px;margin-top:4px}
.heatmaps{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:16px 20px;align-items:start}
.heatmaps figure.chart{margin:0;overflow:visible}
.heatmaps figure.chart svg{margin:0 auto}
details.epochs summary{cursor:pointer;color:var(--accent);font-weight:600;margin:6px 0}
.top3{display:grid;grid-template-columns:repeat(auto-fill,minmax(100px,1fr));gap:10px}
.class-card{border:1px solid var(--line);border-radius:8px;padding:8px 6px 10px;background:#fafbfc}
.class-card h4{margin:0 0 8px;font-size:13px;text-align:center;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.class-card .col{display:flex;flex-direction:column;align-items:center;gap:8px}
.digits{display:grid;grid-template-columns:repeat(auto-fill,minmax(124px,1fr));gap:16px 10px}
figure.digit{width:88px;text-align:center}
figure.digit img,figure.digit .empty{display:block;width:84px;height:84px;image-rendering:pixelated;border-radius:4px;background:#000;margin:0 auto}
figure.digit .empty{background:#eef0f3;color:var(--muted);line-height:84px}
figure.digit figcaption{font-size:11.5px;line-height:1.35;margin-top:4px;color:var(--muted);word-break:break-word}
figure.digit figcaption b{color:var(--ink);font-weight:600}
figure.digit figcaption .line{white-space:nowrap}
figure.digit .line.bad b{color:var(--bad)}
figure.digit .line.good b{color:var(--ok)}
figure.wrong{width:auto}
.notes{color:var(--warn)}
footer{color:var(--muted);font-size:12px;text-align:center;padding:8px 0 32px}
@media print{body{background:#fff}section{break-inside:avoid;border:none}}
`;

/** The whole report page. */
export function renderPage(m: PageModel): string {
  const r = m.record;
  const epochsRun = r.epochs.length;
  const secPerEpoch = mean(r.epochs.map((e) => e.seconds));
  const samplesPerSec = mean(r.epochs.map((e) => e.samplesPerSecond));
  const bestEpoch = r.epochs.find((e) => e.epoch === r.bestEpoch);
  const lastEpoch = r.epochs[r.epochs.length - 1];

  const cards = [
    card('test accuracy', formatPercent(m.testAccuracy), m.testCount !== null ? `${formatCount(m.testCount)} images, loss ${formatLoss(m.testLoss)}` : 'no test evaluation', 'hero'),
    card(
      'best validation loss',
      formatLoss(bestEpoch?.valLoss),
      bestEpoch ? `epoch ${bestEpoch.epoch}, val acc ${formatPercent(bestEpoch.valAccuracy)}` : '',
    ),
    card('final train loss', formatLoss(lastEpoch?.trainLoss), lastEpoch ? `train acc ${formatPercent(lastEpoch.trainAccuracy)}` : ''),
    card('epochs', `${epochsRun} / ${r.config.epochs}`, `total ${formatSeconds(r.seconds)}`),
    card('time per epoch', formatSeconds(secPerEpoch), samplesPerSec === null ? '' : `${formatCount(samplesPerSec)} samples/s`),
    // Records written before --precision existed have no precision (they ran fp32).
    card('backend', r.backend.backend, `${r.backend.isa}, ${plural(r.backend.threads, 'thread')}, ${r.precision?.used ?? 'fp32'} GEMMs`),
  ].join('');

  const ds = r.dataset;
  const datasetRows: [string, string][] = [
    ['name', ds.name],
    ['source', ds.source],
    ['image size', `${ds.height} × ${ds.width}`],
    ['classes', `${ds.classNames.length}: ${ds.classNames.slice(0, 50).join(', ')}${ds.classNames.length > 50 ? `, ... (${ds.classNames.length - 50} more)` : ''}`],
    ['training images', formatCount(ds.trainCount)],
    ['validation images', formatCount(ds.valCount)],
    ['test images', formatCount(ds.testCount)],
  ];
  const runRows: [string, string][] = [
    ['backend', formatBackend(r.backend)],
    ...(r.backend.skipped.length ? ([['skipped backends', r.backend.skipped.join('; ')]] as [string, string][]) : []),
    ['seconds per epoch', formatNumber(secPerEpoch, 3)],
    ['samples per second', formatCount(samplesPerSec)],
    ['total time', formatSeconds(r.seconds)],
    ['started', r.startedAt],
    ['finished', r.finishedAt],
    ['stop reason', r.stopReason],
    ['best epoch', String(r.bestEpoch)],
  ];

  const sections: string[] = [];
  sections.push(`<section id="run"><h2>Run</h2><div class="cols">
<div><h3>Configuration</h3>${kvTable(configRows(r.config), 'config')}</div>
<div><h3>Dataset</h3>${kvTable(datasetRows, 'dataset')}<h3>Backend and timing</h3>${kvTable(runRows, 'timing')}</div>
</div></section>`);

  sections.push(`<section id="curves"><h2>Training curves</h2>${chart(m.charts.loss)}${chart(m.charts.accuracy)}${epochTable(r)}</section>`);

  if (m.charts.prelu) {
    sections.push(`<section id="prelu"><h2>Learned PReLU slopes</h2>${chart(m.charts.prelu)}</section>`);
  }

  if (m.charts.confusion.length > 0) {
    sections.push(`<section id="confusion"><h2>Test set: confusion matrices</h2>
<p class="note">Rows are true labels, columns are predicted labels. “By true label” divides each row by its sum (the diagonal is per-class recall); “by predicted label” divides each column by its sum (the diagonal is per-class precision).</p>
<div class="heatmaps">${m.charts.confusion.map(chart).join('')}</div></section>`);
  }

  if (m.perClass) {
    sections.push(`<section id="per-class"><h2>Test set: per-class metrics</h2>${perClassTableHtml(m.perClass, m.classNames)}</section>`);
  }

  if (m.topPerClass) {
    const classes = m.topPerClass
      .map(
        (c) =>
          `<div class="class-card"><h4>${escapeHtml(c.className)}</h4><div class="col">${c.cards.map((x) => imageCard(x)).join('')}</div></div>`,
      )
      .join('');
    sections.push(`<section id="top3"><h2>Test set: top-3 images per class</h2>
<p class="note">For every class c, the three test images of class c with the highest predicted probability p(c).</p>
<div class="top3">${classes}</div></section>`);
  }

  if (m.wrong) {
    const body = m.wrong.length
      ? `<div class="digits">${m.wrong.map((w) => imageCard(w, 'wrong')).join('')}</div>`
      : '<p>No test image was misclassified.</p>';
    sections.push(`<section id="wrong"><h2>Test set: most confidently wrong</h2>
<p class="note">Misclassified test images, ordered by the probability given to the wrong prediction.</p>${body}</section>`);
  }

  if (m.notes.length) {
    sections.push(`<section id="notes"><h2>Notes</h2><ul class="notes">${m.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul></section>`);
  }

  const subtitle = [
    ds.name,
    r.config.layers.join('-'),
    `${r.config.activation}, ${r.config.optimizer}`,
    `finished ${r.finishedAt}`,
  ].join(' · ');

  return pageShell({
    title: m.title,
    subtitle,
    generatedAt: m.generatedAt,
    body: `${statusBanner(r)}\n<div class="cards">${cards}</div>\n${sections.join('\n')}`,
  });
}
