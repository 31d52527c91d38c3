/**
 * DataError: the one error type for bad or missing data. Its message is one line that names
 * the file (and, for CSV, the line and column) and the problem, so the CLI can print it as is
 * without a stack trace.
 */
export class DataError extends Error {
  override readonly name = 'DataError';
  /** The file or directory the problem is in (as given / resolved), when there is one. */
  readonly file: string | undefined;
  /** 1-based line and column (CSV only). */
  readonly line: number | undefined;
  readonly column: number | undefined;

  constructor(file: string | undefined, problem: string, where?: { line?: number; column?: number }) {
    const at: string[] = [];
    if (where?.line !== undefined) at.push(`line ${where.line}`);
    if (where?.column !== undefined) at.push(`column ${where.column}`);
    const prefix = file === undefined ? '' : at.length > 0 ? `${file}: ${at.join(', ')}: ` : `${file}: `;
    super(prefix + problem);
    this.file = file;
    this.line = where?.line;
    this.column = where?.column;
  }
}

export function isDataError(e: unknown): e is DataError {
  return e instanceof DataError;
}

/** A short description of a Node fs error ('no such file', 'permission denied', ...). */
export { describeErrno as describeFsError } from '../regular-file.js';
