/**
 * The in-process executor: trials run in this process, one after another by default (the
 * event loop interleaves them at batch boundaries when slots > 1, all on the same kernels).
 * Used by tests (a scripted fake trainer can stand in for runTrial) and by --parallel 1.
 */
import type { Dataset } from '../data/types.js';
import type { Kernels } from '../kernels/types.js';
import type { TrainConfig } from '../train/types.js';
import type { Executor, TrialHandle, TrialHooks, TrialOutcome, TrialSpec } from './executor.js';
import { runTrial, type TrialResources } from './trial.js';

/** Datasets and kernels loaded once per process and shared by its trials. */
export function cachedResources(preloaded?: Dataset, preselected?: Kernels): TrialResources {
  const datasets = new Map<string, Promise<Dataset>>();
  if (preloaded) datasets.set('', Promise.resolve(preloaded));
  const kernels = new Map<string, Kernels>();
  return {
    dataset(config: TrainConfig): Promise<Dataset> {
      const key = preloaded ? '' : config.data;
      let p = datasets.get(key);
      if (!p) {
        p = import('../data/registry.js').then((m) => m.loadDataset(config.data, { seed: config.seed }));
        datasets.set(key, p);
      }
      return p;
    },
    kernels(config: TrainConfig): Kernels {
      if (preselected) return preselected;
      const key = `${config.backend}/${config.threads ?? ''}`;
      let k = kernels.get(key);
      if (!k) {
        // Static import would load the addon for commands that never train; this module is loaded only to train.
        k = selectKernelsFor(config);
        kernels.set(key, k);
      }
      return k;
    },
  };
}

let selectKernels: typeof import('../kernels/index.js').selectKernels | undefined;

/** The kernels for a config ('auto' leaves the choice to DENSETRAIN_BACKEND, as train() does). */
function selectKernelsFor(config: TrainConfig): Kernels {
  if (!selectKernels) throw new Error('kernels module not loaded');
  return selectKernels({ backend: config.backend === 'auto' ? undefined : config.backend, threads: config.threads }).kernels;
}

/** Loads the kernels module (once) so that resource lookups stay synchronous. */
export async function loadKernelsModule(): Promise<void> {
  selectKernels ??= (await import('../kernels/index.js')).selectKernels;
}

/** A trial runner: runTrial, or a scripted stand-in in tests. */
export type TrialRunner = (spec: TrialSpec, hooks: TrialHooks, signal: AbortSignal) => Promise<TrialOutcome>;

export class InProcessExecutor implements Executor {
  readonly slots: number;
  readonly #run: TrialRunner;

  constructor(options: { slots?: number; run?: TrialRunner; dataset?: Dataset; kernels?: Kernels } = {}) {
    this.slots = options.slots ?? 1;
    if (options.run) this.#run = options.run;
    else {
      const resources = cachedResources(options.dataset, options.kernels);
      this.#run = async (spec, hooks, signal) => {
        await loadKernelsModule();
        return runTrial(spec, hooks, resources, signal);
      };
    }
  }

  start(trial: TrialSpec, hooks: TrialHooks): TrialHandle {
    const controller = new AbortController();
    const done = this.#run(trial, hooks, controller.signal).catch(
      (error: unknown): TrialOutcome => ({ status: 'failed', record: null, error: error instanceof Error ? error.message : String(error) }),
    );
    return { done, stop: () => controller.abort() };
  }

  async close(): Promise<void> {}
}
