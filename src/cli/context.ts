/** What main.ts hands every command module (src/cli/commands/*), and the shape of such a module. */
import type { Command } from 'commander';
import type { TrainConfig } from '../train/types.js';
import type { Io } from './io.js';

/** What every command module gets. */
export interface CliContext {
  io: Io;
  /** DEFAULT_CONFIG (shown in --help, under every config file and flag). */
  defaults: Readonly<TrainConfig>;
}

/** A command module: adds its command (and subcommands) to the program. */
export type RegisterCommand = (program: Command, context: CliContext) => void;
