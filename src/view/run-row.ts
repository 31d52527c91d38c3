/**
 * A row of `densetrain view`'s runs table, as /api/runs sends it: the server builds it
 * (scan.ts) and the browser script draws it (client/dashboard.ts, which reads this type only:
 * this module holds types and nothing that runs).
 */
export type RowKind = 'run' | 'compare' | 'sweep' | 'tune';
export type RunStatus = 'running' | 'completed' | 'early-stopping' | 'diverged' | 'interrupted' | 'failed' | 'stopped' | 'incomplete';

export interface RunRow {
  /** The folder relative to the root, '/'-separated ('.' for the root itself). */
  id: string;
  kind: RowKind;
  status: RunStatus;
  /** Epochs done and planned. */
  epochs: number;
  epochsPlanned: number | null;
  /** Position inside the epoch in progress (running runs with batch lines). */
  progress: { epoch: number; batch: number; batches: number } | null;
  bestValAccuracy: number | null;
  testAccuracy: number | null;
  backend: string | null;
  seconds: number | null;
  data: string | null;
  /** '784-128-10 relu', or for a series what it varied / how many runs. */
  label: string;
  startedAt: string | null;
  /** The report to link to, relative to the root ('a/report.html'), when it exists. */
  report: string | null;
  /** Series: the ids of the runs inside. */
  members?: string[];
  /** The numbers above as every page prints them (src/format.ts), so the browser script formats nothing. */
  shown: { bestValAccuracy: string; testAccuracy: string; seconds: string };
}
