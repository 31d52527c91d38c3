/** The reliability promise for bad input, as an assertion: exit 2, one `densetrain:` line naming what is wrong, no stack. */
import { expect } from 'vitest';
import type { CliResult } from './cli.js';

export function expectOneLine(result: CliResult, names: string, problem: RegExp): void {
  const lines = result.stderr.split('\n').filter((l) => l.trim() !== '');
  expect(result.code, `stderr: ${result.stderr}`).toBe(2);
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^densetrain: /);
  expect(lines[0]).toContain(names);
  expect(lines[0]).toMatch(problem);
  expect(result.stderr).not.toMatch(/\n\s+at /);
}
