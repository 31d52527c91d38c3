import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchLossPoints, downsample, smoothEma, uniqueNames } from '../src/report/charts.js';
import { configRows, escapeHtml } from '../src/report/html.js';
import { displayShape, encodeGrayPng, imagePixels } from '../src/report/images.js';
import { buildReport, writeReport } from '../src/report/index.js';
import { prefixSvgIds, rasteriseSvg } from '../src/report/render.js';
import { confusionTable, perClassTable } from '../src/report/terminal.js';
import { mostConfidentWrong, topKPerClass } from '../src/train/metrics.js';
import { syntheticRun } from './helpers/report-fixture.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'densetrain-report-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** name -> inline SVG of each chart figure. */
function chartSvgs(html: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of html.matchAll(/<figure class="chart" id="chart-([a-z-]+)" data-chart="[a-z-]+">(<svg[\s\S]*?<\/svg>)/g)) {
    out.set(m[1]!, m[2]!);
  }
  return out;
}

function count(haystack: string, needle: string | RegExp): number {
  return typeof needle === 'string' ? haystack.split(needle).length - 1 : (haystack.match(needle) ?? []).length;
}

/** Non-empty path data of marks with the given role description (e.g. 'rect mark', 'line mark'). */
function drawnMarks(svg: string, role: string): number {
  const re = new RegExp(`<path[^>]*aria-roledescription="${role}"[^>]*\\sd="M[^"]+"`, 'g');
  return count(svg, re);
}

function decodeDataUri(uri: string): PNG {
  const m = /^data:image\/png;base64,([A-Za-z0-9+/=]+)$/.exec(uri);
  if (!m) throw new Error(`not a PNG data URI: ${uri.slice(0, 40)}`);
  return PNG.sync.read(Buffer.from(m[1]!, 'base64'));
}

describe('report: full run with test images', () => {
  const run = syntheticRun();
  let dir: string;
  let html: string;
  beforeAll(async () => {
    dir = await tempDir();
    const path = await writeReport(dir, { ...run, title: 'Synthetic run' });
    expect(path).toBe(join(dir, 'report.html'));
    html = await readFile(path, 'utf8');
  });

  it('has every section', () => {
    for (const id of ['run', 'curves', 'prelu', 'confusion', 'per-class', 'top3', 'wrong']) {
      expect(html, `section #${id}`).toContain(`<section id="${id}">`);
    }
    expect(html).toContain('data-stop-reason="completed"');
    expect(html).toContain('<title>Synthetic run</title>');
    // configuration, dataset, backend, timing
    expect(html).toContain('784 → 128 → 64 → 10');
    expect(html).toContain('avx2-fma');
    expect(html).toContain('seconds per epoch');
    expect(html).toContain('samples per second');
  });

  it('draws six charts with marks', () => {
    const svgs = chartSvgs(html);
    // ids stay unique once the SVGs share one document
    const ids = [...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]!);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.some((id) => id.startsWith('c-confusion-counts-'))).toBe(true);
    expect([...svgs.keys()].sort()).toEqual(
      ['accuracy', 'confusion-by-predicted', 'confusion-by-true', 'confusion-counts', 'loss', 'prelu'].sort(),
    );
    expect(count(html, '<svg')).toBe(6);
    // loss: raw, smoothed, train per epoch, validation per epoch
    expect(drawnMarks(svgs.get('loss')!, 'line mark')).toBe(4);
    expect(drawnMarks(svgs.get('accuracy')!, 'line mark')).toBe(2);
    expect(count(svgs.get('accuracy')!, /aria-roledescription="point"/g)).toBe(run.record.epochs.length * 2 + 1);
    expect(drawnMarks(svgs.get('prelu')!, 'line mark')).toBe(2);
    for (const name of ['confusion-counts', 'confusion-by-true', 'confusion-by-predicted']) {
      expect(drawnMarks(svgs.get(name)!, 'rect mark'), name).toBe(100);
      expect(count(svgs.get(name)!, /aria-roledescription="text mark"/g), name).toBe(100);
    }
  });

  it('shows the test accuracy on the accuracy chart and the counts in the heat map', () => {
    const svgs = chartSvgs(html);
    const acc = run.record.test!.accuracy;
    expect(svgs.get('accuracy')!).toContain(`test ${(acc * 100).toFixed(2)}%`);
    const counts = svgs.get('confusion-counts')!;
    const diag = run.record.test!.confusion[3]![3]!;
    expect(counts).toContain(`aria-label="predicted label: 3; true label: 3; count: ${diag}"`);
  });

  it('the accuracy chart starts at epoch 1, where accuracy is first measured (the loss chart at 0)', () => {
    const svgs = chartSvgs(html);
    expect(svgs.get('accuracy')!).toMatch(/aria-label="X-axis titled 'epoch' for a linear scale with values from 1 to 8"/);
    expect(svgs.get('loss')!).toMatch(/aria-label="X-axis titled 'epoch' for a linear scale with values from 0(\.0)? to 8/);
  });

  it('embeds the 30 top-3 images as decodable PNGs of the right test images', () => {
    const section = html.slice(html.indexOf('<section id="top3">'), html.indexOf('<section id="wrong">'));
    const uris = [...section.matchAll(/<img src="(data:image\/png;base64,[^"]+)"/g)].map((m) => m[1]!);
    expect(uris.length).toBe(30);
    const { images, probs } = run.test;
    const top = topKPerClass(probs, images.labels, images.count, 10, 3).flat();
    uris.forEach((uri, k) => {
      const png = decodeDataUri(uri);
      expect(png.width).toBe(84);
      expect(png.height).toBe(84);
      // The pixel at (3y+1, 3x+1) of the PNG is pixel (y, x) of the expected image.
      const src = imagePixels(images, top[k]!.index);
      for (const [y, x] of [[14, 14], [6, 10], [20, 18], [0, 0]] as const) {
        expect(png.data[((3 * y + 1) * 84 + 3 * x + 1) * 4], `image ${k} pixel ${y},${x}`).toBe(src[y * 28 + x]);
      }
    });
  });

  it('shows the most confidently wrong images with true and predicted labels', () => {
    const section = html.slice(html.indexOf('<section id="wrong">'));
    const uris = [...section.matchAll(/<img src="(data:image\/png;base64,[^"]+)"/g)].map((m) => m[1]!);
    const { images, probs } = run.test;
    const wrong = mostConfidentWrong(probs, images.labels, images.count, 10, 16);
    expect(wrong.length).toBeGreaterThan(0);
    expect(uris.length).toBe(wrong.length);
    uris.forEach((u) => expect(decodeDataUri(u).width).toBe(84));
    const first = wrong[0]!;
    expect(section).toContain(`alt="test image #${first.index}"`);
    expect(section.indexOf(`#${first.index} `)).toBeLessThan(section.indexOf(`#${wrong[1]!.index} `));
  });

  it('makes no network references', () => {
    const withoutNamespaces = html.replace(/xmlns(:xlink)?="http:\/\/www\.w3\.org\/[^"]+"/g, '');
    expect(withoutNamespaces).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<link\b/i);
    for (const m of html.matchAll(/\s(?:src|href)="([^"]*)"/g)) expect(m[1]!.startsWith('data:') || m[1]!.startsWith('#')).toBe(true);
  });

  it('writes SVG copies of every chart', async () => {
    const files = (await readdir(join(dir, 'charts'))).filter((f) => f.endsWith('.svg')).sort();
    expect(files).toEqual(
      ['accuracy.svg', 'confusion-by-predicted.svg', 'confusion-by-true.svg', 'confusion-counts.svg', 'loss.svg', 'prelu.svg'],
    );
    for (const f of files) {
      const svg = await readFile(join(dir, 'charts', f), 'utf8');
      expect(svg.startsWith('<?xml')).toBe(true);
      expect(svg).toMatch(/<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
      expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    }
  });
});

describe('report: probabilities that round to 100%', () => {
  it('top-3 and confidently-wrong cards tell probabilities near 1 apart, ranked by what distinguishes them', async () => {
    const run = syntheticRun();
    const { images } = run.test;
    const probs = Float32Array.from(run.test.probs);
    const classes = 10;
    // Three class-0 images the model is sure of: p(0) rounds to 1 in float32, the rest differs.
    const zeros = [...images.labels.keys()].filter((i) => images.labels[i] === 0).slice(0, 3);
    const rests = [4e-8, 2e-10, 3e-9];
    zeros.forEach((i, k) => {
      probs.fill(0, i * classes, (i + 1) * classes);
      probs[i * classes] = 1;
      probs[i * classes + 1] = rests[k]!;
    });
    expect(zeros.every((i) => probs[i * classes] === 1)).toBe(true);
    const { html } = await buildReport({ record: run.record, test: { images, probs } });
    const top3 = html.slice(html.indexOf('<section id="top3">'), html.indexOf('<section id="wrong">'));
    const zeroCard = top3.slice(top3.indexOf('<h4>0</h4>'), top3.indexOf('<h4>1</h4>'));
    const shown = [...zeroCard.matchAll(/<b>([^<]*)<\/b>/g)].map((m) => m[1]);
    // Most confident first: the smallest rest.
    expect(shown).toEqual(['1 − 2.0e-10', '1 − 3.0e-9', '1 − 4.0e-8']);
    expect(top3).not.toMatch(/100\.0+%/);
    const order = topKPerClass(probs, images.labels, images.count, classes, 3)[0]!.map((s) => s.index);
    expect(order).toEqual([zeros[1], zeros[2], zeros[0]]);
  });
});

describe('report: escaping and variants', () => {
  it('escapes class names, title and stop message', async () => {
    const evil = ['<script>alert(1)</script>', 'a&b', '"quoted"', "it's", '<img src=x onerror=alert(2)>', '5', '6', '7', '8', '9'];
    const run = syntheticRun({ classNames: evil, stopReason: 'diverged', stopMessage: 'loss became NaN at <epoch 3>' });
    const { html } = await buildReport({ ...run, title: '<b>bold</b> & co' });
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toContain('<img src=x');
    expect(html).not.toContain('<b>bold</b>');
    expect(html).not.toContain('<epoch 3>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('&lt;b&gt;bold&lt;/b&gt; &amp; co');
    expect(html).toContain('loss became NaN at &lt;epoch 3&gt;');
    expect(html).toContain('data-stop-reason="diverged"');
    expect(html).toMatch(/role="alert" data-stop-reason="diverged"><strong>Training diverged<\/strong>/);
    // names reach the per-class table, escaped
    expect(html).toContain('<th scope="row">a&amp;b</th>');
    expect(html).toContain('<th scope="row">&quot;quoted&quot;</th>');
  });

  it('escapeHtml covers the five special characters', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
  });

  it('early stopping is prominent; no PReLU chart without slopes', async () => {
    const run = syntheticRun({ stopReason: 'early-stopping', prelu: false, epochs: 6 });
    const { html, charts } = await buildReport(run);
    expect(html).toContain('data-stop-reason="early-stopping"');
    expect(html).toContain('<strong>Stopped early</strong> after epoch 6 of 6');
    expect(html).not.toContain('<section id="prelu">');
    expect(charts.map((c) => c.name)).not.toContain('prelu');
    expect(count(html, '<svg')).toBe(5);
  });

  it('interrupted runs are flagged as alerts', async () => {
    const run = syntheticRun({ stopReason: 'interrupted', stopMessage: 'SIGINT during epoch 4' });
    const { html } = await buildReport(run);
    expect(html).toMatch(/role="alert" data-stop-reason="interrupted"/);
    expect(html).toContain('SIGINT during epoch 4');
  });

  it('without test images: confusion from the record, no image sections, a note', async () => {
    const run = syntheticRun();
    const { html } = await buildReport({ record: run.record });
    expect(html).toContain('<section id="confusion">');
    expect(html).toContain('<section id="per-class">');
    expect(html).not.toContain('<section id="top3">');
    expect(html).not.toContain('<section id="wrong">');
    expect(html).toContain('image sections are omitted');
    expect(html).not.toContain('data:image/png');
  });

  it('without any test evaluation: no confusion section', async () => {
    const run = syntheticRun();
    const { html } = await buildReport({ record: { ...run.record, test: null } });
    expect(html).not.toContain('<section id="confusion">');
    expect(html).toContain('no test-set evaluation');
    expect(count(html, '<svg')).toBe(3);
  });

  it('a run interrupted in its first epoch still gives a report', async () => {
    const run = syntheticRun({ stopReason: 'interrupted', stopMessage: 'SIGINT' });
    const record = { ...run.record, epochs: [], batches: run.record.batches.slice(0, 20), test: null, bestEpoch: 0 };
    const { html, charts } = await buildReport({ record });
    expect(html).toContain('data-stop-reason="interrupted"');
    expect(charts.map((c) => c.name)).toEqual(['loss', 'accuracy']);
    expect(drawnMarks(chartSvgs(html).get('loss')!, 'line mark')).toBe(2); // raw + smoothed batch loss
    const empty = await buildReport({ record: { ...record, batches: [] } });
    expect(count(empty.html, '<svg')).toBe(2);
  });

  it('optional chart PNGs are valid when a rasteriser is installed, skipped otherwise', async () => {
    const png = await rasteriseSvg('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="red"/></svg>');
    if (png !== null) expect(PNG.sync.read(png).width).toBeGreaterThan(0);
    const dir = await tempDir();
    await writeReport(dir, { record: syntheticRun().record });
    const files = await readdir(join(dir, 'charts'));
    const pngs = files.filter((f) => f.endsWith('.png'));
    const svgs = files.filter((f) => f.endsWith('.svg'));
    expect(svgs.length).toBe(6);
    expect(pngs.length).toBe(png === null ? 0 : svgs.length);
    // Each PNG is its chart drawn at twice the SVG's size, with something on it (not one colour).
    for (const f of pngs) {
      const svg = await readFile(join(dir, 'charts', f.replace(/\.png$/, '.svg')), 'utf8');
      const width = Number(/<svg[^>]*\swidth="([\d.]+)"/.exec(svg)![1]);
      const image = PNG.sync.read(await readFile(join(dir, 'charts', f)));
      expect(Math.abs(image.width - 2 * width), f).toBeLessThanOrEqual(2);
      const colours = new Set<number>();
      for (let i = 0; i < image.data.length; i += 4 * 97) colours.add(image.data.readUInt32LE(i));
      expect(colours.size, `${f}: distinct colours`).toBeGreaterThan(3);
    }
  });

  it('legends list only the series that have data (no validation entry without a validation split)', async () => {
    const { record } = syntheticRun();
    const withVal = chartSvgs((await buildReport({ record })).html);
    expect(withVal.get('loss')).toContain('validation loss / epoch');
    expect(withVal.get('accuracy')).toContain('validation');
    const noVal = { ...record, epochs: record.epochs.map((e) => ({ ...e, valLoss: null, valAccuracy: null })) };
    const without = chartSvgs((await buildReport({ record: noVal })).html);
    expect(without.get('loss')).toContain('train loss / epoch');
    expect(without.get('loss')).not.toContain('validation loss / epoch');
    expect(without.get('accuracy')).not.toContain('validation');
  });

  it('the development install has a rasteriser, so the PNG path above is exercised', async () => {
    // @resvg/resvg-js is a devDependency for exactly this; users install it (or @napi-rs/canvas) to get PNGs.
    expect(await rasteriseSvg('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>')).not.toBeNull();
  });

  it('rejects probabilities of the wrong size', async () => {
    const run = syntheticRun();
    await expect(buildReport({ record: run.record, test: { images: run.test.images, probs: new Float32Array(7) } })).rejects.toThrow(
      /expected 400 images x 10 classes/,
    );
  });
});

describe('report building blocks', () => {
  it('batch positions are fractional epochs', () => {
    const { record } = syntheticRun({ epochs: 3 });
    const pts = batchLossPoints(record);
    const perEpoch = Math.ceil(record.dataset.trainCount / record.config.batchSize);
    expect(pts.length).toBe(3 * perEpoch);
    expect(pts[0]!.x).toBeCloseTo(1 / perEpoch, 12);
    expect(pts[perEpoch - 1]!.x).toBeCloseTo(1, 12);
    expect(pts[pts.length - 1]!.x).toBeCloseTo(3, 12);
    // 1-based batch numbers give the same positions
    const oneBased = batchLossPoints({ ...record, batches: record.batches.map((b) => ({ ...b, batch: b.batch + 1 })) });
    expect(oneBased.map((p) => p.x)).toEqual(pts.map((p) => p.x));
    // non-finite losses are dropped
    const withNaN = batchLossPoints({ ...record, batches: [...record.batches, { epoch: 3, batch: 0, loss: Number.NaN }] });
    expect(withNaN.length).toBe(pts.length);
  });

  it('EMA smoothing: debiased, constant stays constant, noise shrinks', () => {
    const flat = smoothEma(Array.from({ length: 50 }, (_, i) => ({ x: i, y: 2 })), 0.9);
    flat.forEach((p) => expect(p.y).toBeCloseTo(2, 12));
    const noisy = Array.from({ length: 400 }, (_, i) => ({ x: i, y: 1 + (i % 2 ? 0.5 : -0.5) }));
    const s = smoothEma(noisy, 0.95);
    expect(Math.abs(s[399]!.y - 1)).toBeLessThan(0.05);
  });

  it('downsampling keeps extremes and caps the size', () => {
    const pts = Array.from({ length: 10_000 }, (_, i) => ({ x: i, y: i === 5_000 ? 100 : Math.sin(i) }));
    const d = downsample(pts, 1000);
    expect(d.length).toBeLessThanOrEqual(1000);
    expect(Math.max(...d.map((p) => p.y))).toBe(100);
    for (let i = 1; i < d.length; i++) expect(d[i]!.x).toBeGreaterThan(d[i - 1]!.x);
  });

  it('duplicate class names are made unique', () => {
    expect(uniqueNames(['a', 'a', 'b'], 4)).toEqual(['a', 'a (1)', 'b', '3']);
  });

  it('SVG ids get a prefix, references follow', () => {
    const svg = '<svg><clipPath id="clip1"><rect/></clipPath><g clip-path="url(#clip1)"><use href="#clip1"/></g></svg>';
    expect(prefixSvgIds(svg, 'c-loss')).toBe(
      '<svg><clipPath id="c-loss-clip1"><rect/></clipPath><g clip-path="url(#c-loss-clip1)"><use href="#c-loss-clip1"/></g></svg>',
    );
  });

  it('PNG encoding: grayscale, upscaled by replication, shape checked', () => {
    const px = Uint8Array.from({ length: 6 }, (_, i) => i * 40);
    const png = PNG.sync.read(encodeGrayPng(px, 2, 3, 4));
    expect([png.width, png.height]).toEqual([12, 8]);
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 12; x++) {
        const v = px[Math.floor(y / 4) * 3 + Math.floor(x / 4)]!;
        const o = (y * 12 + x) * 4;
        expect([png.data[o], png.data[o + 1], png.data[o + 2], png.data[o + 3]]).toEqual([v, v, v, 255]);
      }
    }
    expect(() => encodeGrayPng(px, 2, 2)).toThrow(RangeError);
    expect(displayShape({ height: 1, width: 784, features: 784 })).toEqual({ height: 28, width: 28 });
    expect(displayShape({ height: 1, width: 10, features: 10 })).toEqual({ height: 1, width: 10 });
  });

  it('configuration rows hide settings the run does not use', () => {
    const { record } = syntheticRun();
    const rows = Object.fromEntries(configRows(record.config));
    expect(rows['β1']).toBe('0.9');
    expect(rows['momentum']).toBeUndefined();
    expect(rows['step size (epochs)']).toBeUndefined();
    expect(rows['threads requested']).toBe('auto');
    const sgd = Object.fromEntries(configRows({ ...record.config, optimizer: 'sgd', activation: 'relu', schedule: 'step' }));
    expect(sgd['momentum']).toBe('0.9');
    expect(sgd['β1']).toBeUndefined();
    expect(sgd['step size (epochs)']).toBe('10');
    expect(sgd['initial PReLU slope']).toBeUndefined();
  });
});

describe('terminal tables', () => {
  const confusion = [
    [50, 2, 0],
    [3, 40, 7],
    [0, 0, 1000],
  ];
  const names = ['zero', 'T-shirt/top', 'Ankle boot'];

  it('confusion table: aligned rows, row totals, no ANSI by default', () => {
    const text = confusionTable(confusion, names);
    expect(text).not.toMatch(/\u001b\[/);
    const lines = text.split('\n');
    const widths = new Set(lines.map((l) => [...l].length));
    expect(widths.size).toBe(1);
    const row = lines.find((l) => l.includes('T-shirt/top') && l.includes('40'))!;
    expect(row.replace(/[│|]/g, ' ').trim().split(/\s+/)).toEqual(['T-shirt/top', '3', '40', '7', '50']);
    expect(text).toContain('1000');
    expect(confusionTable(confusion, names, { color: true })).toMatch(/\u001b\[/);
    // One line per class: a rule under the header only, none between the rows.
    expect(lines).toHaveLength(names.length + 4);
    expect(lines.filter((l) => l.startsWith('├'))).toHaveLength(1);
    expect(lines[2]).toMatch(/^├/);
  });

  it('per-class table: precision, recall, support, overall accuracy', () => {
    const text = perClassTable(confusion, names);
    const row = text.split('\n').find((l) => l.includes('Ankle boot'))!;
    // precision 1000/1007, recall 1000/1000
    expect(row).toContain('99.30%');
    expect(row).toContain('100.00%');
    expect(row).toContain('1000');
    const overall = text.split('\n').find((l) => l.includes('overall'))!;
    expect(overall).toContain(`${((1090 / 1102) * 100).toFixed(2)}%`);
    const widths = new Set(text.split('\n').filter((l) => /^[┌│├└]/.test(l)).map((l) => [...l].length));
    expect(widths.size).toBe(1);
    // Rules under the header and above the overall row only.
    const tableLines = text.split('\n').filter((l) => /^[┌│├└]/.test(l));
    expect(tableLines).toHaveLength(names.length + 6);
    expect(tableLines.filter((l) => l.startsWith('├'))).toHaveLength(2);
    expect(tableLines[tableLines.length - 3]).toMatch(/^├/);
  });

  it('long names are shortened and control characters neutralised', () => {
    const text = confusionTable([[1]], ['a very long class name indeed\u001b[31m'], { maxNameLength: 10 });
    expect(text).toContain('a very lo…');
    expect(text).not.toContain('\u001b');
  });
});
