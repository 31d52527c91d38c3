/**
 * The `view` server over a real folder of runs (made by the CLI), through real HTTP on 127.0.0.1:
 * the rows it lists, nothing served from outside the folder (.., %2e%2e, encoded slashes,
 * absolute paths, symbolic links), read-only, Host checking, the event stream following a run
 * as it is written (including a half-written line and a deleted folder), and the command line.
 */
import { request } from 'node:http';
import { appendFile, copyFile, mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRICS_LOG_FILE } from '../src/train/metrics-log.js';
import { RunScanner, type RunRow } from '../src/view/scan.js';
import { startViewServer, type ViewServer } from '../src/view/server.js';
import { collect, ensureBuilt, runCli, spawnCli } from './helpers/cli.js';
import { LiveRun, makeRunsFixture, SECRET, type RunsFixture } from './helpers/runs-fixture.js';
import { formatPercent, formatSeconds } from '../src/format.js';

let fixture: RunsFixture;
let server: ViewServer;

interface Reply {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** A request with the path sent exactly as given (no client-side normalisation of '..'). */
function get(path: string, options: { method?: string; host?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path, method: options.method ?? 'GET', headers: options.host ? { host: options.host } : {} }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (s: string) => (body += s));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function rows(): Promise<RunRow[]> {
  const reply = await get('/api/runs');
  expect(reply.status).toBe(200);
  return (JSON.parse(reply.body) as { rows: RunRow[] }).rows;
}

beforeAll(async () => {
  ensureBuilt();
  fixture = await makeRunsFixture(await mkdtemp(join(tmpdir(), 'densetrain-view-')));
  server = await startViewServer({ root: await realpath(fixture.runs), title: fixture.runs, host: '127.0.0.1', port: 0, pollMs: 100 });
});
afterAll(async () => {
  await server?.close();
  if (fixture) await rm(fixture.root, { recursive: true, force: true });
});

describe('densetrain view: the server', () => {
  it('lists every run and series under the folder, with status, epochs, accuracy, backend, time and report', async () => {
    const list = await rows();
    expect(list.map((r) => `${r.id}:${r.kind}:${r.status}`)).toEqual([
      'dead:run:stopped',
      'old:run:completed',
      'solo:run:completed',
      'study:compare:completed',
      'study/activation-relu:run:completed',
      'study/activation-tanh:run:completed',
    ]);
    const solo = list.find((r) => r.id === 'solo')!;
    expect(solo.epochs).toBe(2);
    expect(solo.epochsPlanned).toBe(2);
    expect(solo.bestValAccuracy).toBeGreaterThan(0.3);
    expect(solo.testAccuracy).toBeGreaterThan(0.3);
    expect(solo.backend).toMatch(/^(native|wasm|reference) \(/);
    expect(solo.seconds).toBeGreaterThan(0);
    expect(solo.label).toBe('64-16-10 relu');
    expect(solo.report).toBe('solo/report.html');
    // The numbers as the pages print them: the browser script formats nothing itself.
    expect(solo.shown).toEqual({ bestValAccuracy: formatPercent(solo.bestValAccuracy), testAccuracy: formatPercent(solo.testAccuracy), seconds: formatSeconds(solo.seconds) });
    expect(solo.shown.testAccuracy).toMatch(/^\d+\.\d\d%$/);
    const old = list.find((r) => r.id === 'old')!;
    expect(old.epochs).toBe(2);
    expect(old.testAccuracy).toBe(solo.testAccuracy);
    const study = list.find((r) => r.id === 'study')!;
    expect(study.members).toEqual(['study/activation-relu', 'study/activation-tanh']);
    expect(study.report).toBe('study/compare.html');
    expect(study.label).toBe('2 runs, varying --activation');
    // The damaged log still shows what it could read.
    expect(list.find((r) => r.id === 'dead')!.epochs).toBe(1);
  });

  it('serves the curves of a run, and a run\'s report', async () => {
    const curves = await get('/api/curves?run=study%2Factivation-tanh');
    expect(curves.status).toBe(200);
    const body = JSON.parse(curves.body) as { epochs: { epoch: number; trainLoss: number }[] };
    expect(body.epochs.map((e) => e.epoch)).toEqual([1, 2]);
    const oldCurves = JSON.parse((await get('/api/curves?run=old')).body) as { epochs: unknown[] };
    expect(oldCurves.epochs).toHaveLength(2);
    expect((await get('/api/curves?run=study')).status).toBe(404);
    expect((await get('/api/curves?run=..%2Foutside')).status).toBe(404);

    const report = await get('/files/solo/report.html');
    expect(report.status).toBe(200);
    expect(report.headers['content-type']).toMatch(/^text\/html/);
    expect(report.body).toContain('<html');
    expect((await get('/files/study/compare.html')).status).toBe(200);
  });

  it('serves nothing outside the folder', async () => {
    const attempts = [
      '/files/../outside/secret.html',
      '/files/..%2Foutside%2Fsecret.html',
      '/files/%2e%2e/outside/secret.html',
      '/files/%2e%2e%2foutside%2fsecret.html',
      '/files/%2E%2E%5Coutside%5Csecret.html',
      '/files/solo/../../outside/secret.html',
      '/files/solo/%2e%2e/%2e%2e/outside/secret.html',
      `/files/${encodeURIComponent(join(fixture.outside, 'secret.html'))}`,
      `/files/${join(fixture.outside, 'secret.html')}`,
      '/files//etc/passwd',
      '/files/%2Fetc%2Fpasswd',
      '/files/outside-link/secret.html',
      '/files/outside-link/metrics.json',
      '/files/secret-link.html',
      '/files/solo/model.safetensors',
      '/files/solo/checkpoint.safetensors',
      '/files/%00solo/report.html',
      '/files/%E0%A4%A',
      '/../outside/secret.html',
      '/%2e%2e/outside/secret.html',
      '/assets/../../outside/secret.html',
    ];
    for (const path of attempts) {
      const reply = await get(path);
      expect(reply.status, path).toBe(404);
      expect(reply.body, path).not.toContain(SECRET);
      expect(reply.body, path).not.toContain('root:');
    }
    // The link is not a run either.
    expect((await rows()).some((r) => r.id.includes('outside'))).toBe(false);
  });

  it('is read-only, and answers only to its own host name', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const reply = await get('/files/solo/report.html', { method });
      expect(reply.status, method).toBe(405);
    }
    expect((await get('/api/runs', { host: 'attacker.example:6006' })).status).toBe(403);
    expect((await get('/api/runs', { host: `localhost:${server.port}` })).status).toBe(200);
  });

  it('the event stream follows a run as it is written, a half-written line, and the folder being deleted', async () => {
    const events: { rows: RunRow[]; changed: string[] }[] = [];
    let buffer = '';
    const req = request({ host: '127.0.0.1', port: server.port, path: '/api/events' });
    const closed = new Promise<void>((resolve) => req.on('close', () => resolve()));
    req.on('response', (res) => {
      expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
      res.setEncoding('utf8').on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = message.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
          if (/^event: runs$/m.test(message)) events.push(JSON.parse(data) as { rows: RunRow[]; changed: string[] });
        }
      });
    });
    req.on('error', () => undefined);
    req.end();
    const waitFor = async (what: string, test: (rows: RunRow[]) => boolean): Promise<RunRow[]> => {
      for (let i = 0; i < 600; i++) {
        const last = events[events.length - 1];
        if (last && test(last.rows)) return last.rows;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`no event where ${what}; last: ${JSON.stringify(events[events.length - 1]?.rows.map((r) => [r.id, r.status, r.epochs]))}`);
    };
    try {
      await waitFor('the first list arrives', (list) => list.some((r) => r.id === 'solo'));
      const live = new LiveRun(join(fixture.runs, 'live'), 3);
      live.start();
      live.epoch(1);
      let list = await waitFor('live shows 1 epoch', (l) => l.some((r) => r.id === 'live' && r.epochs === 1));
      expect(list.find((r) => r.id === 'live')!.status).toBe('running');
      expect(events[events.length - 1]!.changed).toContain('live');
      // Half a line: nothing breaks, nothing is counted yet.
      const log = join(fixture.runs, 'live', METRICS_LOG_FILE);
      await appendFile(log, '{"type":"epoch","epoch":2,"trainLoss":0.9,');
      await new Promise((r) => setTimeout(r, 400));
      expect((await rows()).find((r) => r.id === 'live')!.epochs).toBe(1);
      await appendFile(log, '"trainAccuracy":0.7,"valLoss":1,"valAccuracy":0.6,"lr":0.05,"seconds":0.5,"samplesPerSecond":200}\n');
      await waitFor('live shows 2 epochs', (l) => l.some((r) => r.id === 'live' && r.epochs === 2));
      live.epoch(3);
      live.finish();
      list = await waitFor('live completed', (l) => l.some((r) => r.id === 'live' && r.status === 'completed' && r.epochs === 3));
      expect(list.find((r) => r.id === 'live')!.testAccuracy).toBe(0.8);
      // A half-written metrics.json beside it is ignored (the log says enough).
      await writeFile(join(fixture.runs, 'live', 'metrics.json'), '{"version": 1, "epo');
      await live.remove();
      await waitFor('live is gone', (l) => !l.some((r) => r.id === 'live'));
      expect(events[events.length - 1]!.changed).toContain('live');
      expect((await rows()).length).toBe(6);
    } finally {
      req.destroy();
      await closed;
    }
  });
});

describe('densetrain view: the folder scan', () => {
  it('a tune folder (tune.json, trials/<id>/) whose process died is incomplete, not completed', async () => {
    const root = await mkdtemp(join(tmpdir(), 'densetrain-scan-'));
    try {
      const trial = join(root, 'search', 'trials', 't1');
      await mkdir(trial, { recursive: true });
      await writeFile(join(root, 'search', 'tune.json'), '{"version":1}\n');
      // The dead run of the fixture: a start line of a process that is gone.
      await copyFile(join(fixture.runs, 'dead', METRICS_LOG_FILE), join(trial, METRICS_LOG_FILE));
      const list = await new RunScanner(root).scan();
      expect(list.map((r) => `${r.id}:${r.kind}:${r.status}`)).toEqual(['search:tune:incomplete', 'search/trials/t1:run:stopped']);
      expect(list[0]!.members).toEqual(['search/trials/t1']);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('a run resumed into a new folder: its final record\'s epochs count, not only the ones logged there', async () => {
    const root = await mkdtemp(join(tmpdir(), 'densetrain-scan-'));
    try {
      const moved = join(root, 'moved');
      await mkdir(moved);
      await copyFile(join(fixture.runs, 'solo', 'metrics.json'), join(moved, 'metrics.json'));
      const soloLog = (await readFile(join(fixture.runs, 'solo', METRICS_LOG_FILE), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { type: string; epoch?: number });
      const start = { ...soloLog[0]!, startEpoch: 2 };
      const later = soloLog.filter((l) => l.type === 'epoch' && l.epoch === 2).concat(soloLog.filter((l) => l.type === 'end'));
      await writeFile(join(moved, METRICS_LOG_FILE), [start, ...later].map((l) => JSON.stringify(l)).join('\n') + '\n');
      const scanner = new RunScanner(root);
      const [row] = await scanner.scan();
      expect(row).toMatchObject({ id: 'moved', status: 'completed', epochs: 2 });
      expect((await scanner.curves('moved', moved))!.epochs.map((e) => e.epoch)).toEqual([1, 2]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('densetrain view: the command', () => {
  it('prints its address, serves, and stops on SIGINT', async () => {
    ensureBuilt();
    const child = spawnCli(['view', fixture.runs, '--port', '0']);
    const result = collect(child);
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const m = /at (http:\/\/127\.0\.0\.1:\d+\/) \(Ctrl-C to stop\)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.on('exit', () => reject(new Error(`view exited early: ${out}`)));
    });
    const response = await fetch(`${url}api/runs`);
    expect(response.status).toBe(200);
    const page = await fetch(url);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    for (const asset of ['assets/vega.js', 'assets/vega-lite.js', 'assets/dashboard.js', 'assets/dashboard.css']) {
      const reply = await fetch(`${url}${asset}`);
      expect(reply.status, asset).toBe(200);
      expect((await reply.text()).length, asset).toBeGreaterThan(1000);
    }
    child.kill('SIGINT');
    const done = await result;
    expect(done.code).toBe(0);
  });

  it('bad input: one line, exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['view', join(fixture.root, 'nowhere')], /nowhere: no such folder/],
      [['view', join(fixture.runs, 'solo', 'metrics.json')], /is a file, not a folder of runs/],
      [['view', fixture.runs, '--port', '70000'], /--port must be a whole number from 0 to 65535/],
      [['view', fixture.runs, '--port', `${server.port}`], new RegExp(`--port ${server.port} is in use on 127.0.0.1`)],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(args);
      expect(result.code, args.join(' ')).toBe(2);
      const lines = result.stderr.trim().split('\n');
      expect(lines, result.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(message);
    }
  });
});
