/** The "did you mean" of an unknown option: by spelling, by the option's help, by a prefix. */
import { describe, expect, it } from 'vitest';
import { suggestOption, type KnownOption } from '../src/cli/suggest.js';

const options: KnownOption[] = [
  { long: '--lr', description: 'learning rate (> 0) (default: 0.05)' },
  { long: '--schedule', description: 'learning-rate schedule: constant, step, cosine' },
  { long: '--l2', description: 'L2 weight penalty (>= 0)' },
  { long: '--batch-size', description: 'mini-batch size (>= 1)' },
  { long: '--nesterov', description: 'Nesterov momentum (SGD)' },
  { long: '--no-nesterov', description: 'turn --nesterov off' },
  { long: '--seed', description: 'random seed (integer)' },
  { description: 'a short-only option' },
];

describe('suggestOption', () => {
  it('finds a typo by spelling', () => {
    expect(suggestOption('--nestrov', options)).toBe('--nesterov');
    expect(suggestOption('--no-nesterv', options)).toBe('--no-nesterov');
    expect(suggestOption('--batchsize', options)).toBe('--batch-size');
    expect(suggestOption('--seed=3', options)).toBe('--seed');
  });
  it('finds an option by the name its help gives it, not a longer phrase that starts the same', () => {
    expect(suggestOption('--learning-rate', options)).toBe('--lr');
    expect(suggestOption('--learning_rate', options)).toBe('--lr');
    expect(suggestOption('--learning-rate-schedule', options)).toBe('--schedule');
    expect(suggestOption('--random-seed', options)).toBe('--seed');
  });
  it('completes a unique start and shortens a longer spelling', () => {
    expect(suggestOption('--batch', options)).toBe('--batch-size');
    expect(suggestOption('--lrate', options)).toBe('--lr');
  });
  it('says nothing when no option is close', () => {
    expect(suggestOption('--colour', options)).toBeUndefined();
    expect(suggestOption('--weight-decay', options)).toBeUndefined();
    expect(suggestOption('--', options)).toBeUndefined();
    expect(suggestOption('--lr', [])).toBeUndefined();
  });
});
