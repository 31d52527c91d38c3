/**
 * Opens a generated report in headless chromium (file://): no console errors, no network, every
 * chart drawn, every image decoded, no horizontal overflow; saves test/artifacts/report.png.
 * Needs /usr/bin/chromium (or CHROMIUM_PATH); DENSETRAIN_SKIP_BROWSER=1 skips it.
 */
import { mkdir, rm } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeComparisonReport, writeSweepReport, type ComparedRun, type SweptRun } from '../src/report/compare.js';
import { writeReport } from '../src/report/index.js';
import { chromiumStatus, launchChromium, skipBrowser } from './helpers/chromium.js';
import { syntheticRun } from './helpers/report-fixture.js';

const artifacts = fileURLToPath(new URL('./artifacts/', import.meta.url));

interface PageFacts {
  charts: { name: string; width: number; height: number; marks: number; drawn: number }[];
  images: { complete: boolean; naturalWidth: number; naturalHeight: number; alt: string }[];
  scrollWidth: number;
  clientWidth: number;
  sections: string[];
}

describe.skipIf(skipBrowser())('report in headless chromium', () => {
  let browser: Browser | undefined;

  beforeAll(async () => {
    const status = chromiumStatus();
    if (!status.available) throw new Error(status.message);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
  });

  it('renders without errors or network use; charts drawn; images decoded; screenshot saved', async () => {
    const outDir = `${artifacts}report-html`;
    await rm(outDir, { recursive: true, force: true });
    await mkdir(artifacts, { recursive: true });
    const run = syntheticRun();
    const reportPath = await writeReport(outDir, { ...run, title: 'densetrain report: mnist-sample (synthetic)' });
    const reportUrl = pathToFileURL(reportPath).href;

    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
    const consoleErrors: string[] = [];
    const requests: string[] = [];
    const failed: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') consoleErrors.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
    page.on('request', (r) => requests.push(r.url()));
    page.on('requestfailed', (r) => failed.push(`${r.url().slice(0, 80)}: ${r.failure()?.errorText ?? '?'}`));

    const response = await page.goto(reportUrl, { waitUntil: 'load' });
    expect(response?.ok() ?? true).toBe(true);
    await page.evaluate(() => document.fonts.ready.then(() => undefined));

    const facts = (await page.evaluate(() => {
      const charts = Array.from(document.querySelectorAll('figure.chart')).map((fig) => {
        const svg = fig.querySelector('svg')!;
        const box = svg.getBoundingClientRect();
        // Text marks with no text (blank zero cells of the normalised heat maps) draw nothing by design.
        const marks = (Array.from(svg.querySelectorAll('.role-mark path, .role-mark text, .role-mark line')) as SVGGraphicsElement[]).filter(
          (m) => m.tagName !== 'text' || (m.textContent ?? '') !== '',
        );
        const drawn = marks.filter((m) => {
          const b = m.getBBox();
          return b.width > 0 || b.height > 0;
        }).length;
        return { name: fig.getAttribute('data-chart') ?? '?', width: box.width, height: box.height, marks: marks.length, drawn };
      });
      const images = Array.from(document.images).map((img) => ({
        complete: img.complete,
        naturalWidth: img.naturalWidth,
        naturalHeight: img.naturalHeight,
        alt: img.alt,
      }));
      return {
        charts,
        images,
        scrollWidth: document.documentElement.scrollWidth,
        clientWidth: document.documentElement.clientWidth,
        sections: Array.from(document.querySelectorAll('section')).map((s) => s.id),
      };
    })) as PageFacts;

    await page.screenshot({ path: `${artifacts}report.png`, fullPage: true });
    await page.close();

    expect(consoleErrors).toEqual([]);
    expect(failed).toEqual([]);
    // The only request is the report itself (data: URIs never reach the network).
    expect(requests.filter((u) => u !== reportUrl && !u.startsWith('data:'))).toEqual([]);

    expect(facts.sections).toEqual(['run', 'curves', 'prelu', 'confusion', 'per-class', 'top3', 'wrong']);
    expect(facts.charts.map((c) => c.name)).toEqual([
      'loss',
      'accuracy',
      'prelu',
      'confusion-counts',
      'confusion-by-true',
      'confusion-by-predicted',
    ]);
    for (const c of facts.charts) {
      expect(c.width, c.name).toBeGreaterThan(100);
      expect(c.height, c.name).toBeGreaterThan(100);
      expect(c.marks, c.name).toBeGreaterThan(0);
      expect(c.drawn, `${c.name}: marks with a non-empty bounding box`).toBe(c.marks);
    }
    // Counts: 100 cells + 100 labels; normalised maps leave zero cells blank.
    expect(facts.charts.find((c) => c.name === 'confusion-counts')!.drawn).toBe(200);
    for (const c of facts.charts.filter((c) => c.name.startsWith('confusion-by'))) {
      expect(c.drawn, c.name).toBeGreaterThan(110);
    }

    expect(facts.images.length).toBeGreaterThanOrEqual(30);
    for (const img of facts.images) {
      expect(img.complete, img.alt).toBe(true);
      expect(img.naturalWidth, img.alt).toBe(84);
      expect(img.naturalHeight, img.alt).toBe(84);
    }
    // Nothing sticks out sideways at a common laptop width.
    expect(facts.scrollWidth).toBeLessThanOrEqual(facts.clientWidth);
  });

  it('compare and sweep pages: legend lines drawn, settings under their headers, swatch and value on one line', async () => {
    await mkdir(artifacts, { recursive: true });
    const a = syntheticRun({ epochs: 4, prelu: false }).record;
    const b = syntheticRun({ epochs: 4, prelu: false }).record;
    b.config = { ...b.config, activation: 'tanh', lr: 0.01 };
    const compared: ComparedRun[] = [
      { label: 'relu', status: 'completed', record: a, reportHref: null },
      { label: 'tanh', status: 'completed', record: b, reportHref: null },
    ];
    const comparePath = await writeComparisonReport(`${artifacts}compare-html`, { varied: '--activation', runs: compared });
    const swept: SweptRun[] = [0.001, 0.01, 0.1].map((value) => ({ label: `lr=${value}`, value, status: 'completed', record: a, reportHref: 'x/report.html' }));
    const sweepPath = await writeSweepReport(`${artifacts}sweep-html`, { param: 'lr', scale: 'log', runs: swept });

    // A narrow window squeezes the tables: what must stay together does.
    const page = await browser!.newPage({ viewport: { width: 700, height: 900 }, deviceScaleFactor: 1 });
    await page.goto(pathToFileURL(comparePath).href, { waitUntil: 'load' });
    const compare = await page.evaluate(() => {
      // The split legend (train solid, validation dashed): its symbols are strokes that draw.
      const symbols = Array.from(document.querySelectorAll('#chart-compare-loss .role-legend-symbol path[stroke-dasharray]')).map((p) => {
        const style = getComputedStyle(p);
        return { stroke: style.stroke, width: parseFloat(style.strokeWidth), length: (p as SVGGraphicsElement).getBBox().width };
      });
      // Settings that differ: each value starts where its column's header starts.
      const table = document.querySelector('table.diff')!;
      const heads = Array.from(table.querySelectorAll('thead th')).slice(1);
      const cells = Array.from(table.querySelectorAll('tbody tr:first-child td'));
      const textLeft = (el: Element) => {
        const range = document.createRange();
        range.selectNodeContents(el);
        return range.getBoundingClientRect().left;
      };
      return { symbols, offsets: cells.map((td, i) => textLeft(td) - textLeft(heads[i]!)) };
    });
    await page.screenshot({ path: `${artifacts}compare.png`, fullPage: true });
    await page.goto(pathToFileURL(sweepPath).href, { waitUntil: 'load' });
    const sweepRows = await page.evaluate(() =>
      Array.from(document.querySelectorAll('table.runs tbody th')).map((th) => {
        const swatch = th.querySelector('.swatch')!.getBoundingClientRect();
        const value = th.querySelector('a')!.getBoundingClientRect();
        return { swatchTop: swatch.top, valueTop: value.top, valueLeft: value.left, swatchRight: swatch.right };
      }),
    );
    await page.screenshot({ path: `${artifacts}sweep.png`, fullPage: true });
    await page.close();

    expect(compare.symbols).toHaveLength(2);
    for (const s of compare.symbols) {
      expect(s.stroke).not.toMatch(/transparent|none|rgba\(0, 0, 0, 0\)/);
      expect(s.width).toBeGreaterThan(1);
      expect(s.length).toBeGreaterThan(10);
    }
    expect(compare.offsets.length).toBe(2);
    for (const dx of compare.offsets) expect(Math.abs(dx)).toBeLessThan(2);
    expect(sweepRows).toHaveLength(3);
    for (const r of sweepRows) {
      expect(r.valueLeft).toBeGreaterThan(r.swatchRight);
      expect(Math.abs(r.valueTop - r.swatchTop)).toBeLessThan(8);
    }
  });
});
