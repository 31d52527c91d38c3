/**
 * What `densetrain view` shows: every run folder and every compare / sweep / tune folder under a
 * root, found by walking it, and each run's curves, read from metrics.jsonl as it grows.
 *
 * A run folder holds metrics.jsonl (written while it trains), metrics.json (its final record) or
 * both; older runs have only metrics.json. A series folder holds compare.json, sweep.json or
 * tune.json (written when the series ends) and its runs in subfolders. The walk never follows
 * symbolic links and never leaves the root; a folder deleted or half-written while it is read
 * is skipped (or shows what could be read), never an error.
 */
import { lstat, open, readdir, readFile, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, relative, sep } from 'node:path';
import { METRICS_LOG_FILE, parseMetricsLog, type BatchLine, type EpochLine, type MetricsLogContents } from '../train/metrics-log.js';
import type { EpochRecord, RunRecord } from '../train/types.js';
import { formatBackend, formatPercent, formatSeconds, plural } from '../format.js';
import type { RunRow, RunStatus } from './run-row.js';

/** How deep the walk goes below the root. */
const MAX_DEPTH = 8;
/** A run on another host counts as running while its log changed this recently. */
const REMOTE_RUNNING_MS = 10 * 60 * 1000;
const SERIES_FILES = [
  ['compare', 'compare.json', 'compare.html'],
  ['sweep', 'sweep.json', 'sweep.html'],
  ['tune', 'tune.json', 'tune.html'],
] as const;
const SKIPPED_DIRS = new Set(['node_modules', 'charts']);

export type { RowKind, RunRow, RunStatus } from './run-row.js';

export interface RunCurves {
  id: string;
  epochs: EpochRecord[];
  batches: BatchLine[];
}

interface LogCache {
  size: number;
  mtimeMs: number;
  consumed: number;
  contents: MetricsLogContents;
}

function withShown(row: Omit<RunRow, 'shown'>): RunRow {
  return {
    ...row,
    shown: { bestValAccuracy: formatPercent(row.bestValAccuracy), testAccuracy: formatPercent(row.testAccuracy), seconds: formatSeconds(row.seconds) },
  };
}

function toId(root: string, dir: string): string {
  const rel = relative(root, dir);
  return rel === '' ? '.' : rel.split(sep).join('/');
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function describeConfig(config: { layers?: number[]; activation?: string } | undefined): string {
  if (!config || !Array.isArray(config.layers)) return '';
  return `${config.layers.join('-')} ${config.activation ?? ''}`.trim();
}

function bestVal(epochs: readonly EpochRecord[]): number | null {
  let best: number | null = null;
  for (const e of epochs) if (typeof e.valAccuracy === 'number' && (best === null || e.valAccuracy > best)) best = e.valAccuracy;
  return best;
}

/** Reads a root's runs; keeps each metrics.jsonl's parsed state and reads only what was appended since. */
export class RunScanner {
  readonly root: string;
  #logs = new Map<string, LogCache>();

  constructor(root: string) {
    this.root = root;
  }

  /** Log reads one at a time: a scan and a curves request must not both append the same new lines. */
  #reads: Promise<unknown> = Promise.resolve();

  /** The parsed metrics.jsonl of a folder, reading only new bytes; null when there is none. */
  #log(dir: string): Promise<MetricsLogContents | null> {
    const read = this.#reads.then(() => this.#readLog(join(dir, METRICS_LOG_FILE)));
    this.#reads = read.catch(() => undefined);
    return read;
  }

  async #readLog(file: string): Promise<MetricsLogContents | null> {
    let info;
    try {
      info = await stat(file);
    } catch {
      this.#logs.delete(file);
      return null;
    }
    let cache = this.#logs.get(file);
    if (cache && info.size === cache.size && info.mtimeMs === cache.mtimeMs) return cache.contents;
    // Shrunk (replaced): start again.
    if (!cache || info.size < cache.consumed) cache = { size: 0, mtimeMs: 0, consumed: 0, contents: { start: null, epochs: [], batches: [], end: null, badLines: 0 } };
    let text: string;
    try {
      text = (await readFrom(file, cache.consumed, info.size)).toString('utf8');
    } catch {
      return cache.contents;
    }
    const parsed = parseMetricsLog(text, cache.contents);
    cache.consumed += Buffer.byteLength(text.slice(0, parsed.consumed), 'utf8');
    cache.size = info.size;
    cache.mtimeMs = info.mtimeMs;
    this.#logs.set(file, cache);
    return cache.contents;
  }

  async #record(dir: string): Promise<RunRecord | null> {
    try {
      const value = JSON.parse(await readFile(join(dir, 'metrics.json'), 'utf8')) as RunRecord;
      return typeof value === 'object' && value !== null && Array.isArray(value.epochs) ? value : null;
    } catch {
      return null;
    }
  }

  /** A run folder's row, or null if `dir` is not one. */
  async #runRow(dir: string, names: Set<string>): Promise<RunRow | null> {
    const hasLog = names.has(METRICS_LOG_FILE);
    const hasRecord = names.has('metrics.json');
    if (!hasLog && !hasRecord && !names.has('checkpoint.safetensors')) return null;
    const log = hasLog ? await this.#log(dir) : null;
    const record = hasRecord ? await this.#record(dir) : null;
    const incomplete = names.has('INCOMPLETE');
    const start = log?.start ?? null;
    const epochs = epochsOf(log, incomplete ? null : record);

    let status: RunStatus;
    if (log?.end) status = log.end.stopReason;
    else if (record && !incomplete) status = record.stopReason;
    else if (start) {
      let running: boolean;
      if (start.host === hostname()) running = isAlive(start.pid);
      else {
        const info = await stat(join(dir, METRICS_LOG_FILE)).catch(() => null);
        running = info !== null && Date.now() - info.mtimeMs < REMOTE_RUNNING_MS;
      }
      status = running ? 'running' : 'stopped';
    } else status = record ? record.stopReason : 'incomplete';

    const lastBatch = log?.batches[log.batches.length - 1];
    const progress =
      status === 'running' && lastBatch && lastBatch.epoch > (epochs[epochs.length - 1]?.epoch ?? 0)
        ? { epoch: lastBatch.epoch, batch: lastBatch.batch, batches: lastBatch.batches }
        : null;
    const config = start?.config ?? record?.config;
    const backend = start?.backend ?? record?.backend;
    const test = log?.end?.test ?? (record && !incomplete ? record.test : null);
    return withShown({
      id: toId(this.root, dir),
      kind: 'run',
      status,
      epochs: epochs.length,
      epochsPlanned: config?.epochs ?? null,
      progress,
      bestValAccuracy: bestVal(epochs),
      testAccuracy: test?.accuracy ?? null,
      backend: backend ? formatBackend(backend) : null,
      seconds: log?.end?.seconds ?? record?.seconds ?? (epochs.length ? epochs.reduce((a, e) => a + e.seconds, 0) : null),
      data: start?.dataset.name ?? record?.dataset.name ?? null,
      label: describeConfig(config),
      startedAt: record?.startedAt ?? start?.time ?? null,
      report: names.has('report.html') ? joinId(toId(this.root, dir), 'report.html') : null,
    });
  }

  async #seriesRow(dir: string, names: Set<string>, rows: RunRow[]): Promise<RunRow | null> {
    const found = SERIES_FILES.find(([, json, html]) => names.has(json) || names.has(html));
    if (!found) return null;
    const [kind, json, html] = found;
    let summary: { varied?: string; param?: string; interrupted?: boolean; dataset?: string } = {};
    try {
      summary = JSON.parse(await readFile(join(dir, json), 'utf8')) as typeof summary;
    } catch {
      // Not written yet (the series is running) or half-written: the members tell.
    }
    const id = toId(this.root, dir);
    const prefix = id === '.' ? '' : `${id}/`;
    const members = rows.filter((r) => r.kind === 'run' && r.id !== id && r.id.startsWith(prefix));
    const max = (values: (number | null)[]): number | null => values.reduce<number | null>((m, v) => (v !== null && (m === null || v > m) ? v : m), null);
    // A series whose process died leaves members that stopped mid-run: not completed, whatever its json says.
    const unfinished = members.some((m) => m.status === 'stopped' || m.status === 'incomplete');
    const status: RunStatus = members.some((m) => m.status === 'running')
      ? 'running'
      : summary.interrupted
        ? 'interrupted'
        : unfinished || !names.has(json)
          ? 'incomplete'
          : 'completed';
    const what = summary.varied ?? summary.param;
    return withShown({
      id,
      kind,
      status,
      epochs: members.reduce((a, m) => a + m.epochs, 0),
      epochsPlanned: null,
      progress: null,
      bestValAccuracy: max(members.map((m) => m.bestValAccuracy)),
      testAccuracy: max(members.map((m) => m.testAccuracy)),
      backend: members[0]?.backend ?? null,
      seconds: members.some((m) => m.seconds !== null) ? members.reduce((a, m) => a + (m.seconds ?? 0), 0) : null,
      data: summary.dataset ?? members[0]?.data ?? null,
      label: `${plural(members.length, 'run')}${what ? `, varying ${what}` : ''}`,
      startedAt: members.map((m) => m.startedAt).filter((s): s is string => s !== null).sort()[0] ?? null,
      report: names.has(html) ? joinId(id, html) : null,
      members: members.map((m) => m.id),
    });
  }

  /** Every run and series row under the root, in path order. */
  async scan(): Promise<RunRow[]> {
    const rows: RunRow[] = [];
    const seriesDirs: [string, Set<string>][] = [];
    const walk = async (dir: string, depth: number): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return; // deleted (or unreadable) while we looked
      }
      const names = new Set(entries.filter((e) => e.isFile()).map((e) => e.name));
      const row = await this.#runRow(dir, names);
      if (row) rows.push(row);
      if (SERIES_FILES.some(([, json, html]) => names.has(json) || names.has(html))) seriesDirs.push([dir, names]);
      if (depth >= MAX_DEPTH) return;
      // Dirent.isDirectory() is false for a symbolic link: links are never followed.
      const subdirs = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.') && !SKIPPED_DIRS.has(e.name)).map((e) => e.name).sort();
      for (const name of subdirs) await walk(join(dir, name), depth + 1);
    };
    await walk(this.root, 0);
    for (const [dir, names] of seriesDirs) {
      const row = await this.#seriesRow(dir, names, rows);
      if (row) rows.push(row);
    }
    // Forget logs of folders that are gone.
    const live = new Set(rows.map((r) => join(this.root, r.id, METRICS_LOG_FILE)));
    for (const file of this.#logs.keys()) if (!live.has(file)) this.#logs.delete(file);
    return rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** A run's epochs and batch lines (from metrics.jsonl, else metrics.json); null if `id` is not a run folder under the root. */
  async curves(id: string, dir: string): Promise<RunCurves | null> {
    try {
      if (!(await lstat(dir)).isDirectory()) return null;
    } catch {
      return null;
    }
    const log = await this.#log(dir);
    const record = await this.#record(dir);
    if (!log && !record) return null;
    const incomplete = await stat(join(dir, 'INCOMPLETE')).then(() => true, () => false);
    return { id, epochs: epochsOf(log, incomplete ? null : record).map(stripLine), batches: log?.batches ?? [] };
  }
}

/** Bytes [from, to) of a file (to: its size when stat'ed; a file that grew since is read next time). */
async function readFrom(file: string, from: number, to: number): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(Math.max(0, to - from));
    let done = 0;
    while (done < buffer.length) {
      const { bytesRead } = await handle.read(buffer, done, buffer.length - done, from + done);
      if (bytesRead === 0) break; // shrank meanwhile: the next scan starts again
      done += bytesRead;
    }
    return buffer.subarray(0, done);
  } finally {
    await handle.close();
  }
}

/**
 * A run's epochs: the live log's, unless a final record holds more (a run resumed into a new
 * folder logs only the epochs it ran there; its metrics.json has them all).
 */
function epochsOf(log: MetricsLogContents | null, finalRecord: RunRecord | null): (EpochRecord | EpochLine)[] {
  const logged = log?.epochs ?? [];
  return finalRecord && finalRecord.epochs.length >= logged.length ? finalRecord.epochs : logged;
}

function stripLine(line: EpochRecord | EpochLine): EpochRecord {
  if (!('type' in line)) return line;
  const { type: _type, time: _time, ...record } = line;
  return record;
}

function joinId(id: string, name: string): string {
  return id === '.' ? name : `${id}/${name}`;
}
