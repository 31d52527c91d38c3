/** The dashboard's page and styles (the behaviour is client/dashboard.ts, the charts vega-lite). */

/**
 * No inline script, nothing from another origin. 'unsafe-eval': vega compiles its expressions
 * with Function(); 'unsafe-inline' styles: vega's SVG renderer sets style attributes.
 */
export const PAGE_CSP =
  "default-src 'none'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function dashboardPage(title: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/dashboard.css">
<script src="/assets/vega.js" defer></script>
<script src="/assets/vega-lite.js" defer></script>
<script src="/assets/dashboard.js" defer></script>
</head>
<body>
<header>
  <h1>densetrain runs</h1>
  <p class="where">${escapeHtml(title)}</p>
  <p id="connection" class="connection" data-state="connecting">connecting…</p>
</header>
<main>
  <section id="runs-section">
    <table id="runs">
      <thead><tr>
        <th class="pick" scope="col"><span class="sr">show</span></th>
        <th scope="col">run</th><th scope="col">kind</th><th scope="col">status</th><th scope="col">epochs</th>
        <th scope="col">best val acc</th><th scope="col">test acc</th><th scope="col">backend</th><th scope="col">time</th><th scope="col">report</th>
      </tr></thead>
      <tbody></tbody>
    </table>
    <p id="empty" class="empty" hidden>No runs under this folder yet. Start one with <code>densetrain train --out &lt;folder&gt;/my-run</code>; it appears here as it trains.</p>
  </section>
  <section id="charts-section">
    <p class="hint">Tick runs to overlay their curves per epoch: solid lines are training, dashed lines validation.</p>
    <div class="charts">
      <figure class="chart" data-chart="loss"><figcaption>loss</figcaption><div class="view" id="chart-loss"></div></figure>
      <figure class="chart" data-chart="accuracy"><figcaption>accuracy</figcaption><div class="view" id="chart-accuracy"></div></figure>
    </div>
  </section>
</main>
</body>
</html>
`;
}

export const DASHBOARD_CSS = `
:root { color-scheme: light; --ink: #1d2330; --muted: #5b6472; --line: #dfe3ea; --accent: #2f6fdb; --bg: #f7f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
header { display: flex; align-items: baseline; gap: 1rem; padding: 0.8rem 1.5rem; background: #fff; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
h1 { font-size: 1.2rem; margin: 0; }
.where { margin: 0; color: var(--muted); font-family: ui-monospace, monospace; font-size: 0.85rem; }
.connection { margin: 0 0 0 auto; font-size: 0.8rem; color: var(--muted); }
.connection[data-state="live"]::before { content: "● "; color: #1e9e54; }
.connection[data-state="lost"]::before { content: "● "; color: #c0392b; }
main { padding: 1rem 1.5rem; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 0.8rem; margin-bottom: 1rem; overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 0.35rem 0.6rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-weight: 600; color: var(--muted); font-size: 0.8rem; text-transform: uppercase; letter-spacing: 0.02em; }
td.num { text-align: right; }
tr.series td { background: #f2f5fb; }
td.id { font-family: ui-monospace, monospace; font-size: 0.85rem; }
td.id { white-space: normal; }
td.id small { display: block; color: var(--muted); font-family: system-ui, sans-serif; }
.status { display: inline-block; padding: 0 0.45rem; border-radius: 999px; font-size: 0.8rem; background: #eceff4; }
.status-running { background: #dcecff; color: #124a9c; }
.status-completed, .status-early-stopping { background: #dff3e6; color: #17673a; }
.status-diverged, .status-failed { background: #fde2e0; color: #9c1c12; }
.status-interrupted, .status-stopped, .status-incomplete { background: #fff1d6; color: #7a4b00; }
.pick { width: 2rem; }
.progress { display: block; color: var(--muted); font-size: 0.75rem; }
.sr { position: absolute; left: -9999px; }
.empty, .hint { color: var(--muted); margin: 0.3rem 0 0.6rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1rem; }
figure { margin: 0; }
figcaption { font-weight: 600; margin-bottom: 0.3rem; }
.view { min-height: 300px; }
a { color: var(--accent); }
`;
