/**
 * The first line of an error's message, for the one-line reports of a failure (an INCOMPLETE
 * file, a skipped backend, a failed trial): compilers, loaders and parsers put their details on
 * the lines after it.
 */
export function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split(/\r?\n/).map((line) => line.trim()).find((line) => line !== '') ?? '';
}
