/**
 * Which errors end the command with exit 2 (the user can fix the command line, a file or the
 * environment) and which with exit 1: not every RangeError is the user's.
 */
import { describe, expect, it } from 'vitest';
import { BenchUsageError } from '../src/bench/run.js';
import { EXIT_FAILURE, EXIT_USAGE, isUsageError, UsageError } from '../src/cli/errors.js';
import { reportError } from '../src/cli/main.js';
import { parseQueueUrl, QueueUrlError } from '../src/experiments/queue-url.js';
import { InputError } from '../src/input-error.js';
import { parseBackendChoice } from '../src/kernels/index.js';
import { ConfigError } from '../src/train/schema.js';

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('isUsageError', () => {
  it('takes input errors: options, config, queue URL, environment, bench options', () => {
    const queue = thrown(() => parseQueueUrl('http://localhost:6379'));
    expect(queue).toBeInstanceOf(QueueUrlError);
    const env = thrown(() => parseBackendChoice('gpu', 'DENSETRAIN_BACKEND'));
    expect(env).toBeInstanceOf(InputError);
    for (const error of [queue, env, new ConfigError(['--lr must be > 0, got -1']), new UsageError('x'), new BenchUsageError('unknown suite')]) {
      expect(isUsageError(error), String(error)).toBe(true);
    }
  });

  it('leaves a plain RangeError (a wasm memory that cannot grow, a bug) to exit 1', () => {
    const oom = new RangeError('WebAssembly.Memory.grow(): Maximum memory size exceeded');
    expect(isUsageError(oom)).toBe(false);
    const lines: string[] = [];
    const io = { out: (l = '') => void lines.push(l), err: (l = '') => void lines.push(l) };
    expect(reportError(oom, io as never, false)).toBe(EXIT_FAILURE);
    expect(lines[0]).toBe('densetrain: WebAssembly.Memory.grow(): Maximum memory size exceeded');
    expect(reportError(new QueueUrlError('--queue must start with redis://'), io as never, false)).toBe(EXIT_USAGE);
  });
});
