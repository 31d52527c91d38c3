/**
 * The dashboard in headless chromium (Debian's, through playwright-core), served by the real
 * `densetrain view` command over a folder made by the CLI: it loads with no console errors and no
 * request leaving the server, lists the runs, draws the charts; then, without a reload, a run
 * written epoch by epoch shows each epoch, and a real `densetrain train` started after the page
 * opened appears and its epoch count rises to the end. Saves test/artifacts/dashboard.png.
 * DENSETRAIN_SKIP_BROWSER=1 skips it (see helpers/chromium.ts).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumStatus, launchChromium, skipBrowser } from './helpers/chromium.js';
import { collect, ensureBuilt, runCli, spawnCli } from './helpers/cli.js';
import { LiveRun, makeRunsFixture, type RunsFixture } from './helpers/runs-fixture.js';

const artifacts = fileURLToPath(new URL('./artifacts/', import.meta.url));

describe.skipIf(skipBrowser())('dashboard in headless chromium', () => {
  let browser: Browser | undefined;
  let fixture: RunsFixture;
  let view: ChildProcess | undefined;
  let url = '';

  beforeAll(async () => {
    const status = chromiumStatus();
    if (!status.available) throw new Error(status.message);
    ensureBuilt();
    fixture = await makeRunsFixture(await mkdtemp(join(tmpdir(), 'densetrain-dash-')));
    view = spawnCli(['view', fixture.runs, '--port', '0', '--poll-ms', '200']);
    url = await new Promise<string>((resolve, reject) => {
      let out = '';
      view!.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const m = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
        if (m) resolve(m[1]!);
      });
      view!.on('exit', (code) => reject(new Error(`densetrain view exited (${code}): ${out}`)));
    });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    if (view) {
      const done = collect(view);
      view.kill('SIGINT');
      await done;
    }
    if (fixture) await rm(fixture.root, { recursive: true, force: true });
  });

  const epochsOf = (page: Page, id: string) => page.locator(`tr[data-id="${id}"] td.epochs`).textContent({ timeout: 1000 }).catch(() => null);

  async function waitForText(page: Page, id: string, test: (text: string) => boolean, what: string): Promise<string> {
    for (let i = 0; i < 1200; i++) {
      const text = await epochsOf(page, id);
      if (text !== null && test(text)) return text;
      await page.waitForTimeout(50);
    }
    throw new Error(`the page never showed ${what} (last: ${await epochsOf(page, id)})`);
  }

  it('loads cleanly, lists the runs, draws the charts, and follows runs live without a reload', async () => {
    const page = await browser!.newPage({ viewport: { width: 1280, height: 1000 }, deviceScaleFactor: 1 });
    const problems: string[] = [];
    const foreign: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('requestfailed', (r) => {
      // The event stream is cut when the page closes; anything else failing is a problem.
      if (!r.url().endsWith('/api/events')) problems.push(`request failed: ${r.url()}: ${r.failure()?.errorText}`);
    });
    page.on('request', (r) => {
      if (!r.url().startsWith(url) && !r.url().startsWith('data:')) foreign.push(r.url());
    });

    await page.goto(url, { waitUntil: 'load' });
    await page.waitForSelector('tr[data-id="solo"]');
    await page.evaluate(() => ((window as unknown as { marker: string }).marker = 'same page'));
    const ids = await page.locator('#runs tbody tr').evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset['id']));
    expect(ids).toEqual(['dead', 'old', 'solo', 'study', 'study/activation-relu', 'study/activation-tanh']);
    expect(await page.locator('tr[data-id="solo"] .status').textContent()).toBe('completed');
    expect(await page.locator('tr[data-id="dead"] .status').textContent()).toBe('stopped');
    expect(await page.locator('tr[data-id="solo"] td.epochs').textContent()).toBe('2/2');
    expect(await page.locator('tr[data-id="solo"] td.test').textContent()).toMatch(/^\d+\.\d\d%$/);
    expect(await page.locator('tr[data-id="study"] a').getAttribute('href')).toBe('/files/study/compare.html');

    // Charts: the runs shown first are drawn as lines with points.
    const drawn = async () =>
      page.evaluate(() =>
        ['loss', 'accuracy'].map((kind) => {
          const svg = document.querySelector(`#chart-${kind} svg`);
          const marks = svg ? (Array.from(svg.querySelectorAll('.role-mark path')) as SVGGraphicsElement[]) : [];
          const box = svg?.getBoundingClientRect();
          return { kind, width: box?.width ?? 0, height: box?.height ?? 0, marks: marks.length, drawn: marks.filter((m) => m.getBBox().width > 0 || m.getBBox().height > 0).length };
        }),
      );
    await page.waitForFunction(() => document.querySelectorAll('#chart-loss svg .role-mark path').length > 0);
    for (const chart of await drawn()) {
      expect(chart.width, chart.kind).toBeGreaterThan(300);
      expect(chart.height, chart.kind).toBeGreaterThan(200);
      expect(chart.marks, chart.kind).toBeGreaterThan(4);
      expect(chart.drawn, chart.kind).toBeGreaterThan(4);
    }

    // A report link opens the run's report from the server.
    const report = await page.request.get(`${url}files/solo/report.html`);
    expect(report.status()).toBe(200);

    // A run written epoch by epoch: every epoch shows up on the same page.
    const live = new LiveRun(join(fixture.runs, 'live'), 3);
    live.start();
    live.epoch(1);
    await waitForText(page, 'live', (t) => t === '1/3', 'live at 1/3');
    expect(await page.locator('tr[data-id="live"] .status').textContent()).toBe('running');
    live.epoch(2);
    await waitForText(page, 'live', (t) => t === '2/3', 'live at 2/3');
    // It is running, so it was ticked and its curves are in the charts.
    expect(await page.locator('tr[data-id="live"] input[type=checkbox]').isChecked()).toBe(true);
    await page.waitForFunction(() => Array.from(document.querySelectorAll('#chart-loss svg text')).some((t) => t.textContent === 'live'));
    live.epoch(3);
    live.finish();
    await page.waitForFunction(() => document.querySelector('tr[data-id="live"] .status')?.textContent === 'completed');

    // A real training started now: it appears, and its epoch count rises to the end.
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { seen: string[] }).seen = seen;
      new MutationObserver(() => {
        const text = document.querySelector('tr[data-id="cli-run"] td.epochs')?.textContent;
        if (text && seen[seen.length - 1] !== text) seen.push(text);
      }).observe(document.querySelector('#runs tbody')!, { childList: true, subtree: true, characterData: true });
    });
    const training = runCli(['train', '--layers', '784,128,10', '--epochs', '8', '--backend', 'wasm', '--out', join(fixture.runs, 'cli-run'), '--quiet'], { timeoutMs: 300_000 });
    await waitForText(page, 'cli-run', (t) => /^\d+\/8/.test(t), 'the new run');
    const trained = await training;
    expect(trained.code, trained.stderr).toBe(0);
    await waitForText(page, 'cli-run', (t) => t === '8/8', 'cli-run at 8/8');
    await page.waitForFunction(() => document.querySelector('tr[data-id="cli-run"] .status')?.textContent === 'completed');
    const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen);
    const counts = seen.map((t) => Number(t.split('/')[0]));
    expect(counts[counts.length - 1]).toBe(8);
    expect(counts.length, `epoch counts seen: ${seen.join(', ')}`).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < counts.length; i++) expect(counts[i]!).toBeGreaterThanOrEqual(counts[i - 1]!);

    // Never reloaded, no errors, nothing fetched from elsewhere.
    expect(await page.evaluate(() => (window as unknown as { marker?: string }).marker)).toBe('same page');
    await mkdir(artifacts, { recursive: true });
    await page.screenshot({ path: `${artifacts}dashboard.png`, fullPage: true });
    await page.close();
    expect(problems).toEqual([]);
    expect(foreign).toEqual([]);
  });
});
