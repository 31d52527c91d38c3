/**
 * The dashboard in the browser: the runs table from /api/runs, kept current by the server's
 * event stream (/api/events), and loss / accuracy charts (vega-lite, compiled here and drawn by
 * vega as SVG) of the runs ticked in the table. A changed run that is shown gets its curves
 * fetched again (/api/curves), so a running run's lines grow without a reload.
 */

// vega and vega-lite's browser builds, loaded before this script (their UMD globals).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
declare const vega: any;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
declare const vegaLite: any;

(() => {
  /** A row as /api/runs sends it (a type only: this script stays a classic script). */
  type Row = import('../run-row.js').RunRow;

  interface Epoch {
    epoch: number;
    trainLoss: number | null;
    trainAccuracy: number | null;
    valLoss: number | null;
    valAccuracy: number | null;
  }

  interface Point {
    run: string;
    epoch: number;
    split: 'train' | 'validation';
    value: number;
  }

  let rows: Row[] = [];
  const selected = new Set<string>();
  /** Runs the user ticked or unticked: never selected or unselected automatically again. */
  const touched = new Set<string>();
  const curves = new Map<string, Epoch[]>();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const views: Record<'loss' | 'accuracy', any> = { loss: null, accuracy: null };

  const byId = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

  function epochsText(row: Row): string {
    if (row.kind !== 'run') return '–';
    return row.epochsPlanned !== null ? `${row.epochs}/${row.epochsPlanned}` : `${row.epochs}`;
  }

  function cell(tr: HTMLTableRowElement, text: string, className = ''): HTMLTableCellElement {
    const td = tr.insertCell();
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function runIdsOf(row: Row): string[] {
    return row.kind === 'run' ? [row.id] : (row.members ?? []);
  }

  function renderTable(): void {
    const body = (byId<HTMLTableElement>('runs')).tBodies[0]!;
    body.replaceChildren();
    for (const row of rows) {
      const tr = body.insertRow();
      tr.dataset['id'] = row.id;
      tr.dataset['kind'] = row.kind;
      if (row.kind !== 'run') tr.className = 'series';
      const pick = tr.insertCell();
      pick.className = 'pick';
      const box = document.createElement('input');
      box.type = 'checkbox';
      const ids = runIdsOf(row);
      box.checked = ids.length > 0 && ids.every((id) => selected.has(id));
      box.disabled = ids.length === 0;
      box.setAttribute('aria-label', `show ${row.id}`);
      box.addEventListener('change', () => {
        for (const id of ids) {
          touched.add(id);
          if (box.checked) selected.add(id);
          else selected.delete(id);
        }
        renderTable();
        void refreshCurves(box.checked ? ids : []);
      });
      pick.append(box);
      const idCell = cell(tr, row.id === '.' ? '(this folder)' : row.id, 'id');
      if (row.label) {
        const small = document.createElement('small');
        small.textContent = row.label + (row.data ? ` · ${row.data}` : '');
        idCell.append(small);
      }
      cell(tr, row.kind, 'kind');
      const status = cell(tr, '', 'status-cell');
      const badge = document.createElement('span');
      badge.className = `status status-${row.status}`;
      badge.textContent = row.status;
      status.append(badge);
      cell(tr, epochsText(row), 'num epochs');
      if (row.progress) {
        const small = document.createElement('small');
        small.className = 'progress';
        small.textContent = `epoch ${row.progress.epoch}: batch ${row.progress.batch}/${row.progress.batches}`;
        status.append(small);
      }
      cell(tr, row.shown.bestValAccuracy, 'num val');
      cell(tr, row.shown.testAccuracy, 'num test');
      cell(tr, row.backend ?? '–', 'backend');
      cell(tr, row.shown.seconds, 'num time');
      const report = tr.insertCell();
      if (row.report) {
        const a = document.createElement('a');
        a.href = `/files/${row.report.split('/').map(encodeURIComponent).join('/')}`;
        a.textContent = row.report.split('/').pop() ?? 'report';
        a.target = '_blank';
        a.rel = 'noopener';
        report.append(a);
      } else report.textContent = '–';
    }
    byId<HTMLElement>('empty').hidden = rows.length > 0;
  }

  /** New runs are shown as they appear (running ones first); the user's choices stick. */
  function autoSelect(newIds: string[]): void {
    const runs = rows.filter((r) => r.kind === 'run' && !touched.has(r.id));
    const fresh = runs.filter((r) => newIds.includes(r.id));
    const running = fresh.filter((r) => r.status === 'running');
    const pick = selected.size === 0 ? [...running, ...fresh.filter((r) => r.status !== 'running')].slice(0, 4) : running;
    for (const r of pick) selected.add(r.id);
  }

  async function loadCurves(id: string): Promise<void> {
    const response = await fetch(`/api/curves?run=${encodeURIComponent(id)}`);
    if (!response.ok) {
      curves.delete(id);
      return;
    }
    const body = (await response.json()) as { epochs: Epoch[] };
    curves.set(id, body.epochs);
  }

  async function refreshCurves(ids: string[]): Promise<void> {
    await Promise.all(ids.filter((id) => selected.has(id)).map((id) => loadCurves(id).catch(() => undefined)));
    await drawCharts();
  }

  function points(kind: 'loss' | 'accuracy'): Point[] {
    const out: Point[] = [];
    for (const id of selected) {
      for (const e of curves.get(id) ?? []) {
        const train = kind === 'loss' ? e.trainLoss : e.trainAccuracy;
        const val = kind === 'loss' ? e.valLoss : e.valAccuracy;
        if (typeof train === 'number' && Number.isFinite(train)) out.push({ run: id, epoch: e.epoch, split: 'train', value: train });
        if (typeof val === 'number' && Number.isFinite(val)) out.push({ run: id, epoch: e.epoch, split: 'validation', value: val });
      }
    }
    return out;
  }

  function chartSpec(kind: 'loss' | 'accuracy', width: number): unknown {
    return {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      // The plot's width; axes and legends are added around it ('pad'), so nothing is clipped.
      width,
      height: 240,
      autosize: { type: 'pad', resize: true },
      data: { name: 'points' },
      mark: { type: 'line', point: { size: 30 }, strokeWidth: 2 },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1, format: 'd' } },
        y: {
          field: 'value',
          type: 'quantitative',
          title: kind === 'loss' ? 'cross-entropy loss' : 'accuracy',
          scale: { zero: false },
          ...(kind === 'accuracy' ? { axis: { format: '.0%' } } : {}),
        },
        color: { field: 'run', type: 'nominal', title: 'run', legend: { orient: 'bottom', columns: 2, labelLimit: 360 } },
        // Dashed: validation (said above the charts; a legend of dashes next to point symbols reads badly).
        strokeDash: { field: 'split', type: 'nominal', scale: { domain: ['train', 'validation'], range: [[1, 0], [5, 3]] }, legend: null },
        detail: { field: 'split' },
      },
      config: { font: 'system-ui, sans-serif', view: { stroke: null } },
    };
  }

  async function drawCharts(): Promise<void> {
    for (const kind of ['loss', 'accuracy'] as const) {
      const values = points(kind);
      if (views[kind] === null) {
        const container = byId<HTMLElement>(`chart-${kind}`);
        const compiled = vegaLite.compile(chartSpec(kind, Math.max(240, container.clientWidth - 90))).spec;
        views[kind] = new vega.View(vega.parse(compiled), { renderer: 'svg', container: `#chart-${kind}`, hover: false });
      }
      await views[kind].data('points', values).runAsync();
    }
  }

  function applyRows(next: Row[], changed: string[]): void {
    const known = new Set(rows.map((r) => r.id));
    rows = next;
    const present = new Set(rows.map((r) => r.id));
    for (const id of [...selected]) if (!present.has(id)) selected.delete(id);
    for (const id of [...curves.keys()]) if (!present.has(id)) curves.delete(id);
    autoSelect(rows.filter((r) => !known.has(r.id)).map((r) => r.id));
    renderTable();
    const stale = [...selected].filter((id) => changed.includes(id) || !curves.has(id));
    void refreshCurves(stale);
  }

  function connect(): void {
    const state = byId<HTMLElement>('connection');
    const events = new EventSource('/api/events');
    events.addEventListener('open', () => {
      state.dataset['state'] = 'live';
      state.textContent = 'live';
    });
    events.addEventListener('error', () => {
      state.dataset['state'] = 'lost';
      state.textContent = 'reconnecting…';
    });
    events.addEventListener('runs', (event) => {
      const update = JSON.parse((event as MessageEvent<string>).data) as { rows: Row[]; changed: string[] };
      applyRows(update.rows, update.changed);
    });
  }

  async function start(): Promise<void> {
    const response = await fetch('/api/runs');
    const body = (await response.json()) as { rows: Row[] };
    applyRows(body.rows, []);
    await drawCharts();
    connect();
  }

  void start();
})();
