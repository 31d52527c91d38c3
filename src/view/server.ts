/**
 * `densetrain view`'s web server (Hono on Node's http server): a read-only dashboard over a folder
 * of runs.
 *
 *   GET /                 the page (page.ts)
 *   GET /assets/*         its script (client/dashboard.js), styles, and vega + vega-lite's browser
 *                         builds from the installed packages (nothing from a CDN)
 *   GET /api/runs         every run and series row (scan.ts)
 *   GET /api/curves?run=  one run's epochs and batch lines
 *   GET /api/events       Server-Sent Events: 'runs' (the rows and the ids that changed) whenever
 *                         a poll of the folder finds a change
 *   GET /files/<path>     reports and charts inside the folder (.html .svg .png .json .jsonl)
 *
 * Only GET and HEAD exist (anything else: 405): no request changes a file. Paths never leave the
 * folder (paths.ts). On a loopback address, requests naming another Host are refused, so a web
 * page cannot reach the dashboard through a rebound DNS name.
 */
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAdaptorServer } from '@hono/node-server';
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { DASHBOARD_CSS, dashboardPage, PAGE_CSP } from './page.js';
import { resolveFileInside, resolveInside } from './paths.js';
import { RunScanner, type RunRow } from './scan.js';
import { firstLine } from '../first-line.js';

export interface RunsUpdate {
  rows: RunRow[];
  /** Ids whose row changed (appeared, progressed, finished) or disappeared since the last update. */
  changed: string[];
}

/** Polls the folder while someone listens; tells listeners what changed. */
export class RunsWatcher {
  readonly scanner: RunScanner;
  readonly #pollMs: number;
  #rows: Map<string, string> = new Map();
  #latest: RunRow[] = [];
  #listeners = new Set<(update: RunsUpdate) => void>();
  #timer: NodeJS.Timeout | null = null;
  #scanning: Promise<RunsUpdate> | null = null;

  constructor(root: string, pollMs: number) {
    this.scanner = new RunScanner(root);
    this.#pollMs = pollMs;
  }

  /** Scans now (one scan at a time: concurrent callers share it). */
  refresh(): Promise<RunsUpdate> {
    this.#scanning ??= this.#scan().finally(() => {
      this.#scanning = null;
    });
    return this.#scanning;
  }

  async #scan(): Promise<RunsUpdate> {
    const rows = await this.scanner.scan();
    const next = new Map(rows.map((r) => [r.id, JSON.stringify(r)]));
    const changed = rows.filter((r) => this.#rows.get(r.id) !== next.get(r.id)).map((r) => r.id);
    for (const id of this.#rows.keys()) if (!next.has(id)) changed.push(id);
    this.#rows = next;
    this.#latest = rows;
    const update = { rows, changed };
    if (changed.length > 0) for (const listener of this.#listeners) listener(update);
    return update;
  }

  get rows(): RunRow[] {
    return this.#latest;
  }

  subscribe(listener: (update: RunsUpdate) => void): () => void {
    this.#listeners.add(listener);
    if (this.#timer === null) {
      this.#timer = setInterval(() => void this.refresh().catch(() => undefined), this.#pollMs);
      this.#timer.unref();
    }
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.stop();
    };
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}

const FILE_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json; charset=utf-8',
  '.jsonl': 'text/plain; charset=utf-8',
};

/** Where vega's and vega-lite's browser builds are in the installed packages. */
function browserBuilds(): { vega: string; vegaLite: string } {
  const require = createRequire(import.meta.url);
  // Both packages export their JSON schema from build/, next to the browser bundles.
  return {
    vega: join(dirname(require.resolve('vega/vega-schema.json')), 'vega.min.js'),
    vegaLite: join(dirname(require.resolve('vega-lite/vega-lite-schema.json')), 'vega-lite.min.js'),
  };
}

const CLIENT_SCRIPT = fileURLToPath(new URL('./client/dashboard.js', import.meta.url));

export interface ViewAppOptions {
  /** The folder shown (a real path: symbolic links resolved). */
  root: string;
  /** How the page names the folder. */
  title: string;
  pollMs: number;
  /** Host names accepted in the Host header (loopback binds); null accepts any. */
  allowedHosts: Set<string> | null;
}

export function createViewApp(options: ViewAppOptions): { app: Hono; watcher: RunsWatcher } {
  const { root } = options;
  const watcher = new RunsWatcher(root, options.pollMs);
  const builds = browserBuilds();
  const app = new Hono();

  app.use('*', async (c, next) => {
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') return c.text('densetrain view is read-only\n', 405, { Allow: 'GET, HEAD' });
    if (options.allowedHosts !== null) {
      const host = (c.req.header('host') ?? '').replace(/:\d+$/, '').toLowerCase();
      if (!options.allowedHosts.has(host)) return c.text('unknown host\n', 403);
    }
    await next();
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Cache-Control', 'no-store');
  });

  app.get('/', (c) => c.html(dashboardPage(options.title), 200, { 'Content-Security-Policy': PAGE_CSP }));

  const asset = (path: string, type: string) => async () =>
    new Response(await readFile(path), { headers: { 'Content-Type': type } });
  app.get('/assets/vega.js', asset(builds.vega, 'text/javascript; charset=utf-8'));
  app.get('/assets/vega-lite.js', asset(builds.vegaLite, 'text/javascript; charset=utf-8'));
  app.get('/assets/dashboard.js', asset(CLIENT_SCRIPT, 'text/javascript; charset=utf-8'));
  app.get('/assets/dashboard.css', (c) => c.body(DASHBOARD_CSS, 200, { 'Content-Type': 'text/css; charset=utf-8' }));

  app.get('/api/runs', async (c) => c.json({ title: options.title, rows: (await watcher.refresh()).rows }));

  app.get('/api/curves', async (c) => {
    const id = c.req.query('run');
    const row = id === undefined ? undefined : (watcher.rows.find((r) => r.id === id) ?? (await watcher.refresh()).rows.find((r) => r.id === id));
    const dir = row && row.kind === 'run' ? await resolveInside(root, id!) : null;
    const curves = dir === null ? null : await watcher.scanner.curves(id!, dir);
    return curves === null ? c.json({ error: `no run ${JSON.stringify(id ?? '')}` }, 404) : c.json(curves);
  });

  app.get('/api/events', (c) =>
    streamSSE(c, async (stream) => {
      let pending: RunsUpdate | null = null;
      let wake: (() => void) | null = null;
      let closed = false;
      const unsubscribe = watcher.subscribe((update) => {
        pending = { rows: update.rows, changed: [...new Set([...(pending?.changed ?? []), ...update.changed])] };
        wake?.();
      });
      stream.onAbort(() => {
        closed = true;
        unsubscribe();
        wake?.();
      });
      try {
        const first = await watcher.refresh();
        await stream.writeSSE({ event: 'runs', data: JSON.stringify({ rows: first.rows, changed: [] }), retry: 1000 });
        while (!closed) {
          if (pending === null) await new Promise<void>((resolve) => (wake = resolve));
          wake = null;
          const update: RunsUpdate | null = pending;
          pending = null;
          if (update !== null && !closed) await stream.writeSSE({ event: 'runs', data: JSON.stringify(update) });
        }
      } finally {
        unsubscribe();
      }
    }),
  );

  app.get('/files/*', async (c) => {
    const raw = new URL(c.req.url).pathname.slice('/files/'.length);
    let relativePath: string;
    try {
      relativePath = decodeURIComponent(raw);
    } catch {
      return c.text('not found\n', 404);
    }
    const type = FILE_TYPES[extname(relativePath).toLowerCase()];
    const file = type === undefined ? null : await resolveFileInside(root, relativePath);
    if (file === null) return c.text('not found\n', 404);
    try {
      return new Response(await readFile(file), { headers: { 'Content-Type': type! } });
    } catch {
      return c.text('not found\n', 404); // deleted since it was resolved
    }
  });

  app.notFound((c) => c.text('not found\n', 404));
  app.onError((error, c) => c.text(`error: ${firstLine(error)}\n`, 500));
  return { app, watcher };
}

export interface ViewServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** Starts the dashboard on host:port (port 0: any free port). Rejects with the listen error (EADDRINUSE, ...). */
export async function startViewServer(options: { root: string; title: string; host: string; port: number; pollMs: number }): Promise<ViewServer> {
  const loopback = LOOPBACK.has(options.host) || options.host.startsWith('127.');
  const { app, watcher } = createViewApp({
    root: options.root,
    title: options.title,
    pollMs: options.pollMs,
    allowedHosts: loopback ? new Set(['127.0.0.1', 'localhost', '[::1]', options.host.toLowerCase()]) : null,
  });
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${shownHost}:${port}/`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        watcher.stop();
        server.close(() => resolve());
        // Event streams never end by themselves.
        server.closeAllConnections();
      }),
  };
}
