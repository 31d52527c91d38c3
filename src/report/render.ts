/**
 * Vega-Lite spec -> SVG string, in Node, without a canvas: vega-lite compiles the spec, vega's
 * View renders it with the headless 'none' renderer. Optional PNG rasterisation uses a
 * rasteriser only if one happens to be installed (never a dependency of densetrain).
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { ChartBlock } from './html.js';

/** Renders a Vega-Lite spec to a standalone SVG document string. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const compiled = compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: vega.Error });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * Makes every id in an SVG unique to `prefix` (and rewrites the references to them), so several
 * SVGs can be inlined into one HTML page without their clip paths or gradients colliding.
 */
export function prefixSvgIds(svg: string, prefix: string): string {
  const ids = new Set<string>();
  for (const m of svg.matchAll(/\sid="([^"]+)"/g)) ids.add(m[1]!);
  if (ids.size === 0) return svg;
  const rename = (id: string): string => (ids.has(id) ? `${prefix}-${id}` : id);
  return svg
    .replace(/(\sid=")([^"]+)(")/g, (_, a: string, id: string, b: string) => a + rename(id) + b)
    .replace(/url\(#([^)]+)\)/g, (_, id: string) => `url(#${rename(id)})`)
    .replace(/((?:xlink:)?href=")#([^"]+)(")/g, (_, a: string, id: string, b: string) => `${a}#${rename(id)}${b}`);
}

type Rasteriser = (svg: string) => Promise<Buffer>;
let rasteriser: Promise<Rasteriser | null> | undefined;

async function tryImport(name: string): Promise<any> {
  try {
    return await import(name);
  } catch {
    return null;
  }
}

async function findRasteriser(): Promise<Rasteriser | null> {
  const resvg = await tryImport('@resvg/resvg-js');
  if (resvg?.Resvg) {
    return async (svg) => Buffer.from(new resvg.Resvg(svg, { fitTo: { mode: 'zoom', value: 2 } }).render().asPng());
  }
  const canvas = await tryImport('@napi-rs/canvas');
  if (canvas?.createCanvas && canvas?.loadImage) {
    return async (svg) => {
      const image = await canvas.loadImage(Buffer.from(svg));
      const c = canvas.createCanvas(image.width * 2, image.height * 2);
      const ctx = c.getContext('2d');
      ctx.scale(2, 2);
      ctx.drawImage(image, 0, 0);
      return Buffer.from(await c.encode('png'));
    };
  }
  return null;
}

/**
 * PNG bytes of an SVG if an optional rasteriser (@resvg/resvg-js or @napi-rs/canvas) is
 * installed; null otherwise, or if it fails.
 */
export async function rasteriseSvg(svg: string): Promise<Buffer | null> {
  rasteriser ??= findRasteriser();
  const r = await rasteriser;
  if (!r) return null;
  try {
    return await r(svg);
  } catch {
    return null;
  }
}

/**
 * A chart for a page: rendered to SVG with its ids prefixed by its name, since several inline SVGs
 * share one document (the same SVG is written to charts/<name>.svg).
 */
export async function chartBlock(name: string, title: string, spec: TopLevelSpec, caption?: string): Promise<ChartBlock> {
  const svg = prefixSvgIds(await renderSvg(spec), `c-${name}`);
  return { name, title, svg, ...(caption ? { caption } : {}) };
}
