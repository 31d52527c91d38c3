/**
 * `densetrain train`: resolves the config (defaults <- --config file <- flags), picks the
 * kernels, loads and checks the data, trains with a progress display, and leaves a run folder
 * with metrics.json, model.safetensors and report.html.
 *
 * Ctrl-C once: the trainer stops after the current batch and writes its checkpoint; the report
 * so far is written and the command exits 130. Ctrl-C twice: exit 130 at once. SIGTERM is
 * handled the same way, with exit code 143. The run folder is locked while it is written.
 */
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { assertNotLocked } from '../../train/run-lock.js';
import { formatBackendInfo } from '../../kernels/index.js';
import { readCheckpoint } from '../../train/checkpoint.js';
// What may differ from the checkpoint's config on resume; train() refuses the rest. The CLI
// checks first so the message names the flag or config key the user wrote.
import { RESUME_OVERRIDABLE } from '../../train/train.js';
import { CONFIG_KEYS, ConfigError, describeKey, optionFlag, type ConfigKey, type ResolvedConfig } from '../../train/schema.js';
import type { TrainConfig } from '../../train/types.js';
import type { BackendChoice } from '../../kernels/types.js';
import { loadData } from '../deps.js';
import { EXIT_OK, ExitRequest } from '../errors.js';
import { interruptExitCode, interruptHandler } from '../interrupt.js';
import { checkDataFor, dataLine, selectBackend } from '../run-checks.js';
import { runIntoFolder } from '../run.js';
import type { CliContext, RegisterCommand } from '../context.js';
import { addTrainConfigOptions, resolveTrainOptions } from '../options.js';
import { createTrainProgress } from '../progress.js';
import { checkRunDir, defaultRunDir } from '../run-folder.js';


interface TrainCommandOptions extends Record<string, unknown> {
  out?: string;
  resume?: string;
  quiet?: boolean;
  verbose?: boolean;
}

export const registerTrainCommand: RegisterCommand = (program, context) => {
  const command = program
    .command('train')
    .description('train an MLP; writes a run folder with metrics.json, model.safetensors and report.html');
  addTrainConfigOptions(command, context.defaults);
  command
    .option('--out <dir>', 'run folder (default: runs/<timestamp>)')
    .option('--resume <dir>', "continue the run in <dir> from its checkpoint (flags given override its config)")
    .option('--quiet', 'one line per epoch and the final summary: no progress bar, header, confusion or per-class tables')
    .option('--verbose', 'show the resolved config, and stack traces on errors')
    .action(async (options: TrainCommandOptions) => {
      const code = await trainCommand(options, context);
      if (code !== EXIT_OK) throw new ExitRequest(code);
    });
};


/** The run folder of a --resume argument (a folder, or a checkpoint file in one). */
async function runFolderOf(path: string): Promise<string> {
  const st = await stat(path).catch(() => null);
  return st?.isDirectory() ? path : dirname(path);
}

interface TrainResolution {
  resolved: ResolvedConfig;
  /** Resuming without --backend: the backend the run ran on (it continues there). */
  resumeBackend?: BackendChoice | undefined;
  /** The checkpoint being resumed, for messages. */
  checkpointFile?: string | undefined;
}

async function resolveForTrain(options: TrainCommandOptions, context: CliContext): Promise<TrainResolution> {
  if (options.resume === undefined) return { resolved: await resolveTrainOptions(options, context.defaults) };
  // A run another process is training is refused first, before anything else is said about it.
  await assertNotLocked(await runFolderOf(options.resume));
  // Resuming: the checkpoint's config is the base; flags and --config may change only some keys.
  const checkpoint = await readCheckpoint(options.resume);
  const saved: TrainConfig = { ...context.defaults, ...checkpoint.config };
  const resolved = await resolveTrainOptions(options, saved);
  const conflicts: string[] = [];
  for (const key of CONFIG_KEYS) {
    const source = resolved.sources[key];
    if (source.kind === 'default' || RESUME_OVERRIDABLE.includes(key)) continue;
    if (JSON.stringify(resolved.config[key]) !== JSON.stringify(saved[key])) {
      conflicts.push(
        `${describeKey(key, source)} ${JSON.stringify(resolved.config[key])} differs from the run being resumed (${JSON.stringify(saved[key])} in ${checkpoint.file})`,
      );
    }
  }
  if (conflicts.length > 0) {
    throw new ConfigError([
      ...conflicts,
      `only ${RESUME_OVERRIDABLE.map((k) => optionFlag(k)).join(', ')} can change when resuming`,
    ]);
  }
  const done = checkpoint.state.epoch;
  if (resolved.config.epochs < done) {
    throw new ConfigError([`${describeKey('epochs', resolved.sources.epochs)} ${resolved.config.epochs} is fewer than the ${done} epochs already completed in ${checkpoint.file}`]);
  }
  // Without --backend the run continues on the backend (and ISA) it was trained on, not on
  // whatever 'auto' or DENSETRAIN_BACKEND picks, so a resumed run stays bit-identical to an
  // uninterrupted one (train() refuses a different ISA).
  const ran = checkpoint.state.ranOn?.backend ?? (saved.backend !== 'auto' ? saved.backend : undefined);
  const resumeBackend = resolved.sources.backend.kind === 'default' ? ran : undefined;
  return { resolved, resumeBackend, checkpointFile: checkpoint.file };
}

export async function trainCommand(options: TrainCommandOptions, context: CliContext): Promise<number> {
  const { io } = context;
  let progress: ReturnType<typeof createTrainProgress> | undefined;
  const interrupt = interruptHandler(io, () => progress?.stop());
  try {
    const { resolved, resumeBackend, checkpointFile } = await resolveForTrain(options, context);
    const { config } = resolved;
    const { kernels, info } = selectBackend(
      resumeBackend === undefined
        ? resolved
        : { ...resolved, config: { ...config, backend: resumeBackend }, sources: { ...resolved.sources, backend: { kind: 'file', path: checkpointFile! } } },
    );
    // --quiet: the epoch lines and the final summary only (which names the backend too).
    const header = options.quiet ? () => {} : (line: string) => io.out(line);
    header(`backend: ${formatBackendInfo(info)}`);
    const fromEnv = process.env['DENSETRAIN_BACKEND'];
    if (resumeBackend !== undefined && fromEnv !== undefined && fromEnv !== '' && fromEnv !== resumeBackend) {
      io.err(`densetrain: note: continuing on ${resumeBackend}, the backend the run was trained on (DENSETRAIN_BACKEND=${fromEnv} ignored; pass --backend ${fromEnv} to change it, and the result will differ from an uninterrupted run)`);
    }
    if (options.verbose) io.out(`config: ${JSON.stringify(config)}`);

    const outDir = options.out ?? options.resume ?? defaultRunDir();
    const outFlag = options.out !== undefined ? '--out' : '--resume';
    const resumingHere = options.resume !== undefined && resolve(outDir) === resolve(options.resume);
    await checkRunDir(outDir, outFlag, resumingHere);

    const dataset = await (await loadData()).loadDataset(config.data, { seed: config.seed });
    const trainCount = checkDataFor(dataset, resolved);
    header(dataLine(dataset, trainCount));
    if (interrupt.controller.signal.aborted) {
      io.err('densetrain: interrupted before training started; nothing was written');
      return interruptExitCode(interrupt.controller.signal);
    }

    progress = createTrainProgress(io, { bars: io.tty && !options.quiet, epochNumber: (r) => r.epoch });
    const outcome = await runIntoFolder({
      io,
      config,
      outDir,
      outFlag,
      resumingHere,
      resumeFrom: options.resume,
      // An explicit --backend (or a config file's) may differ from the checkpoint's.
      allowBackendChange: resolved.sources.backend.kind !== 'default',
      dataset,
      trainCount,
      kernels,
      info,
      signal: interrupt.controller.signal,
      progress,
      detail: options.quiet ? 'summary' : 'full',
    });
    return outcome.code;
  } finally {
    progress?.stop();
    interrupt.dispose();
  }
}
