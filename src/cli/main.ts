/**
 * The densetrain command: builds the commander program from one module per command
 * (src/cli/commands/*), runs it, and turns whatever happened into one exit code:
 * 0 ok, 1 runtime failure, 2 usage (bad option, config file or data), 130 interrupted.
 */
import { Command, CommanderError } from 'commander';
import { DEFAULT_CONFIG } from '../train/defaults.js';
import { registerBenchCommand } from './commands/bench.js';
import { registerCompareCommand } from './commands/compare.js';
import { registerDataCommand } from './commands/data.js';
import { registerEvalCommand } from './commands/eval.js';
import { registerExportCommand } from './commands/export.js';
import { registerInfoCommand } from './commands/info.js';
import { registerPredictCommand } from './commands/predict.js';
import { registerSweepCommand } from './commands/sweep.js';
import { registerTrainCommand } from './commands/train.js';
import { registerTuneCommand } from './commands/tune.js';
import { registerWorkerCommand } from './commands/worker.js';
import { registerViewCommand } from './commands/view.js';
import type { CliContext, RegisterCommand } from './context.js';
import { errorLine, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, ExitRequest, isUsageError } from './errors.js';
import { processIo, type Io } from './io.js';
import { commandFor, suggestOption } from './suggest.js';
import { packageVersion } from './version.js';

const COMMANDS: RegisterCommand[] = [
  registerTrainCommand,
  registerCompareCommand,
  registerSweepCommand,
  registerTuneCommand,
  registerWorkerCommand,
  registerEvalCommand,
  registerExportCommand,
  registerPredictCommand,
  registerInfoCommand,
  registerDataCommand,
  registerBenchCommand,
  registerViewCommand,
];

export function buildProgram(context: CliContext): Command {
  const program = new Command('densetrain')
    .description('Train and evaluate multi-layer perceptrons on MNIST-style image data')
    .version(packageVersion(), '-V, --version')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => void process.stdout.write(s),
      writeErr: (s) => void process.stderr.write(s),
      // main() prints commander's errors itself, in one line.
      outputError: () => {},
    })
    .showSuggestionAfterError(true);
  // .command() copies these settings (exitOverride, output) to every subcommand.
  for (const register of COMMANDS) register(program, context);
  return program;
}

/** Runs the CLI on user arguments (process.argv.slice(2)) and returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2), io: Io = processIo()): Promise<number> {
  const verbose = argv.includes('--verbose');
  try {
    const program = buildProgram({ io, defaults: DEFAULT_CONFIG });
    await program.parseAsync(argv, { from: 'user' });
    return EXIT_OK;
  } catch (error) {
    return reportError(error, io, verbose, argv);
  }
}

/** Where commander suggests nothing (--lrate, --learning-rate), the closest option of the command that failed. */
function optionHint(error: CommanderError, io: Io, argv: string[]): string {
  if (error.code !== 'commander.unknownOption' || /did you mean/i.test(error.message)) return '';
  const typed = /'(--?[^'=]+)/.exec(error.message)?.[1];
  if (typed === undefined) return '';
  // Only on this error path: the command tree again, to read the failed command's options.
  const command = commandFor(buildProgram({ io, defaults: DEFAULT_CONFIG }), argv);
  const suggestion = suggestOption(typed, command.options);
  return suggestion === undefined ? '' : ` (did you mean ${suggestion}?)`;
}

export function reportError(error: unknown, io: Io, verbose: boolean, argv: string[] = []): number {
  if (error instanceof ExitRequest) return error.code;
  if (error instanceof CommanderError) {
    if (error.exitCode === 0) return EXIT_OK; // --help, --version
    // Help shown because a command is missing: the help text was the message.
    if (error.code !== 'commander.help') io.err(`densetrain: ${errorLine(error).replace('(Did you mean', '(did you mean')}${optionHint(error, io, argv)}`);
    return EXIT_USAGE;
  }
  const usage = isUsageError(error);
  io.err(`densetrain: ${errorLine(error)}`);
  if (verbose && error instanceof Error && error.stack) io.err(error.stack);
  // A failed write names its file and cause; its stack would add nothing.
  else if (!usage && !(error instanceof Error && error.name === 'FileWriteError')) io.err('run with --verbose for the stack');
  return usage ? EXIT_USAGE : EXIT_FAILURE;
}
