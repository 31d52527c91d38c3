/**
 * Terminal tables (cli-table3) for `train` and `eval`: the confusion matrix and per-class
 * metrics. Functions return strings; the CLI prints them. No colour unless asked for, so the
 * output is the same on a TTY, in a pipe and in a log file.
 */
import Table from 'cli-table3';
import { formatPercent } from '../format.js';
import { perClassStats } from '../train/metrics.js';

export interface TerminalTableOptions {
  /** ANSI colour for headers and the diagonal (default false). */
  color?: boolean;
  /** Longest class name shown before it is cut with '…' (default 14). */
  maxNameLength?: number;
}

const bold = (s: string, on: boolean): string => (on ? `\u001b[1m${s}\u001b[22m` : s);
const green = (s: string, on: boolean): string => (on ? `\u001b[32m${s}\u001b[39m` : s);

function shorten(name: string, max: number): string {
  // Control characters in a class name would corrupt the table; show them as '?'.
  // eslint-disable-next-line no-control-regex
  const clean = name.replace(/[\u0000-\u001f\u007f]/g, '?');
  return clean.length <= max ? clean : `${clean.slice(0, Math.max(1, max - 1))}…`;
}

function names(classNames: string[], n: number, max: number): string[] {
  return Array.from({ length: n }, (_, i) => shorten(classNames[i] ?? String(i), max));
}

const plainStyle = { head: [] as string[], border: [] as string[], 'padding-left': 1, 'padding-right': 1 };

/**
 * A cli-table3 table without the rule it draws between every body row: the rule under the header
 * stays (unless `header: false`: the table has none), and with `beforeLast` the one above a totals
 * row. (cli-table3 draws the header's rule with the row rules' characters, so blanking those
 * characters would lose it too.) A ten-class confusion table is 15 lines instead of 24.
 */
export function withoutRowRules(table: string, options: { header?: boolean; beforeLast?: boolean } = {}): string {
  const lines = table.split('\n');
  const rules = lines.map((l, i) => (l.startsWith('├') ? i : -1)).filter((i) => i >= 0);
  const keep = new Set([options.header === false ? undefined : rules[0], options.beforeLast ? rules[rules.length - 1] : undefined]);
  return lines.filter((l, i) => !l.startsWith('├') || keep.has(i)).join('\n');
}

/** confusion[true][predicted] as a table: one row per true label, one column per prediction, row totals. */
export function confusionTable(confusion: number[][], classNames: string[], options: TerminalTableOptions = {}): string {
  const color = options.color ?? false;
  const n = confusion.length;
  const labels = names(classNames, n, options.maxNameLength ?? 14);
  const table = new Table({
    head: [bold('true \\ predicted', color), ...labels.map((l) => bold(l, color)), bold('total', color)],
    colAligns: ['left', ...labels.map(() => 'right' as const), 'right'],
    style: plainStyle,

  });
  confusion.forEach((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    table.push([
      bold(labels[t]!, color),
      ...row.map((v, p) => (p === t ? green(String(v), color) : v === 0 ? '.' : String(v))),
      String(total),
    ]);
  });
  return withoutRowRules(table.toString());
}


/** Per-class precision, recall (= per-class accuracy) and support, from confusion[true][predicted]. */
export function perClassTable(confusion: number[][], classNames: string[], options: TerminalTableOptions = {}): string {
  const color = options.color ?? false;
  const stats = perClassStats(confusion);
  const labels = names(classNames, confusion.length, options.maxNameLength ?? 14);
  const table = new Table({
    head: ['class', 'support', 'precision', 'recall', 'accuracy'].map((h) => bold(h, color)),
    colAligns: ['left', 'right', 'right', 'right', 'right'],
    style: plainStyle,

  });
  stats.forEach((s, c) => {
    table.push([labels[c]!, String(s.support), formatPercent(s.precision), formatPercent(s.recall), formatPercent(s.accuracy)]);
  });
  const total = stats.reduce((a, s) => a + s.support, 0);
  const correct = confusion.reduce((a, row, c) => a + (row[c] ?? 0), 0);
  const macro = (k: 'precision' | 'recall'): number => (stats.length ? stats.reduce((a, s) => a + s[k], 0) / stats.length : 0);
  table.push([bold('overall', color), String(total), formatPercent(macro('precision')), formatPercent(macro('recall')), formatPercent(total ? correct / total : 0)]);
  return `${withoutRowRules(table.toString(), { beforeLast: true })}\n(overall precision and recall are macro averages; overall accuracy is correct / total)`;
}
