/**
 * "Did you mean ...?" for an unknown option, from the options the command declares: the closest
 * by spelling (--nestrov -> --nesterov, --batch -> --batch-size, --lrate -> --lr) or by what its help says it is
 * (--learning-rate -> --lr, whose help starts "learning rate"). commander's own suggestion
 * covers plain typos only; this one runs where it found nothing.
 */
import type { Command } from 'commander';
import { distance } from 'fastest-levenshtein';

/** What a suggestion needs of a declared option (commander's Option has both). */
export interface KnownOption {
  long?: string | undefined;
  description: string;
}

/** An edit distance small enough to be a slip rather than another word: a third of the length. */
const near = (d: number, text: string): boolean => d <= Math.max(1, Math.floor(text.length / 3));

/** "learning-rate schedule: constant, step" -> "learning rate schedule": what the help calls the option. */
function helpName(description: string): string {
  return description.split(/[(:,;[]/, 1)[0]!.replace(/-/g, ' ').trim().toLowerCase();
}

/** The closest declared long option to `typed` ('--learning-rate' or 'learning-rate=0.1'), or undefined. */
export function suggestOption(typed: string, options: readonly KnownOption[]): string | undefined {
  const name = typed.replace(/^-+/, '').split('=', 1)[0]!.toLowerCase();
  if (name === '') return undefined;
  const longs = options.filter((o): o is KnownOption & { long: string } => typeof o.long === 'string');
  const closest = <T>(items: readonly T[], score: (item: T) => number): { item: T; score: number } | undefined =>
    items.reduce<{ item: T; score: number } | undefined>((best, item) => {
      const s = score(item);
      return best === undefined || s < best.score ? { item, score: s } : best;
    }, undefined);

  const spelled = closest(longs, (o) => distance(name, o.long.slice(2)));
  if (spelled && near(spelled.score, name)) return spelled.item.long;
  const phrase = name.replace(/[-_]+/g, ' ');
  const meant = closest(longs, (o) => distance(phrase, helpName(o.description)));
  if (meant && near(meant.score, phrase)) return meant.item.long;
  // The start of exactly one option's name: 'batch' -> 'batch-size'.
  const started = longs.filter((o) => name.length >= 3 && o.long.slice(2).startsWith(name));
  if (started.length === 1) return started[0]!.long;
  // A longer spelling of an option's name: 'lrate' -> 'lr'.
  return longs
    .filter((o) => o.long.length >= 4 && name.startsWith(o.long.slice(2)))
    .sort((a, b) => b.long.length - a.long.length)[0]?.long;
}

/** The command argv runs (the program, or the subcommand named by its first words). */
export function commandFor(program: Command, argv: readonly string[]): Command {
  let command = program;
  for (const word of argv) {
    if (word.startsWith('-')) break;
    const sub = command.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (!sub) break;
    command = sub;
  }
  return command;
}
