/**
 * The spread of repeats (--repeats) as a chart: each seed's test accuracy as a small grey point,
 * the mean as a coloured point with an error bar of one standard deviation either side. The x
 * axis is the configuration (compare) or the swept value (sweep).
 */
import type { TopLevelSpec } from 'vega-lite';
import { baseConfig, PALETTE, percentFormat, type SweepScale } from './charts.js';

export interface SpreadColumn {
  /** The configuration's label (compare) or swept value (sweep). */
  x: string | number;
  /** Finished repeats' values (diverged ones are not among them). */
  values: number[];
  mean: number | null;
  std: number | null;
}

export function spreadChartSpec(columns: SpreadColumn[], options: { xTitle: string; metric: string; scale: 'nominal' | SweepScale; width?: number; height?: number }): TopLevelSpec {
  const seeds = columns.flatMap((c) => c.values.map((v) => ({ x: c.x, y: v })));
  const means = columns.filter((c) => c.mean !== null).map((c) => ({ x: c.x, y: c.mean!, lo: c.mean! - (c.std ?? 0), hi: c.mean! + (c.std ?? 0) }));
  const nominal = options.scale === 'nominal';
  const x = nominal
    ? { field: 'x', type: 'nominal', title: options.xTitle, sort: columns.map((c) => c.x), axis: { labelAngle: 0 } }
    : {
        field: 'x',
        type: 'quantitative',
        title: options.xTitle,
        scale: options.scale === 'log' ? { type: 'log', padding: 24 } : options.scale === 'symlog' ? { type: 'symlog', padding: 24 } : { zero: false, nice: false, padding: 24 },
        axis: { format: '~g' },
      };
  const all = [...seeds.map((s) => s.y), ...means.flatMap((m) => [m.lo, m.hi])];
  const y = { field: 'y', type: 'quantitative', title: options.metric, scale: { zero: false }, axis: { format: percentFormat(all) } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `${options.metric[0]!.toUpperCase()}${options.metric.slice(1)} over seeds: mean ± std`,
    width: options.width ?? (nominal ? Math.min(1000, Math.max(320, columns.length * 90)) : 480),
    height: options.height ?? 260,
    config: baseConfig,
    layer: [
      { data: { values: means }, mark: { type: 'rule', strokeWidth: 2, color: PALETTE.smoothed }, encoding: { x, y: { ...y, field: 'lo' }, y2: { field: 'hi' } } },
      { data: { values: means }, mark: { type: 'tick', thickness: 2, size: 14, color: PALETTE.smoothed, orient: 'horizontal' }, encoding: { x, y: { ...y, field: 'lo' } } },
      { data: { values: means }, mark: { type: 'tick', thickness: 2, size: 14, color: PALETTE.smoothed, orient: 'horizontal' }, encoding: { x, y: { ...y, field: 'hi' } } },
      { data: { values: seeds }, mark: { type: 'point', filled: true, size: 30, color: '#9aa3af', opacity: 0.8 }, encoding: { x, y } },
      { data: { values: means }, mark: { type: 'point', filled: true, size: 90, color: PALETTE.smoothed }, encoding: { x, y } },
    ],
  } as TopLevelSpec;
}
