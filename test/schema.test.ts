import { describe, expect, it } from 'vitest';
import {
  checkConfigAgainstData,
  ConfigError,
  CONFIG_KEYS,
  optionFlag,
  parseConfigPart,
  resolveConfig,
  suggestKey,
} from '../src/train/schema.js';
import type { TrainConfig } from '../src/train/types.js';

const cli = { kind: 'cli' } as const;
const file = { kind: 'file', path: 'config.json' } as const;

const base: TrainConfig = {
  data: 'mnist-sample',
  layers: [784, 128, 64, 10],
  activation: 'relu',
  alpha: 0.01,
  init: 'auto',
  optimizer: 'sgd',
  lr: 0.05,
  momentum: 0.9,
  nesterov: false,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  schedule: 'constant',
  stepSize: 10,
  gamma: 0.5,
  l2: 0,
  epochs: 10,
  batchSize: 64,
  valSplit: 0.1,
  patience: 0,
  seed: 1,
  standardize: false,
  backend: 'auto',
  precision: 'fp32',
};

function problem(input: unknown, source: Parameters<typeof parseConfigPart>[1] = cli): string {
  try {
    parseConfigPart(input, source);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect(e).toBeInstanceOf(RangeError);
    return (e as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(input)}`);
}

describe('train config schema', () => {
  it('accepts a full valid config and every key of TrainConfig', () => {
    expect(parseConfigPart(base, file)).toEqual(base);
    expect([...CONFIG_KEYS].sort()).toEqual([...Object.keys(base), 'threads'].sort());
  });

  it('maps keys to the flags users type', () => {
    expect(optionFlag('batchSize')).toBe('--batch-size');
    expect(optionFlag('valSplit')).toBe('--val-split');
    expect(optionFlag('stepSize')).toBe('--step-size');
    expect(optionFlag('beta1')).toBe('--beta1');
    expect(optionFlag('l2')).toBe('--l2');
  });

  it('names the CLI flag and the value', () => {
    expect(problem({ lr: -1 })).toBe('--lr must be > 0, got -1');
    expect(problem({ lr: 0 })).toBe('--lr must be > 0, got 0');
    expect(problem({ lr: Number.NaN })).toBe('--lr must be a finite number, got NaN');
    expect(problem({ lr: Infinity })).toBe('--lr must be a finite number, got Infinity');
    expect(problem({ batchSize: 0 })).toBe('--batch-size must be an integer >= 1, got 0');
    expect(problem({ batchSize: 2.5 })).toBe('--batch-size must be an integer, got 2.5');
    expect(problem({ valSplit: 1 })).toBe('--val-split must be in [0, 1), got 1');
    expect(problem({ momentum: 1 })).toBe('--momentum must be in [0, 1), got 1');
    expect(problem({ beta2: -0.1 })).toBe('--beta2 must be in [0, 1), got -0.1');
    expect(problem({ eps: 0 })).toBe('--eps must be > 0, got 0');
    expect(problem({ l2: -1e-4 })).toBe('--l2 must be >= 0, got -0.0001');
    expect(problem({ patience: -1 })).toBe('--patience must be an integer >= 0, got -1');
    expect(problem({ epochs: 0 })).toBe('--epochs must be an integer >= 1, got 0');
    expect(problem({ threads: 0 })).toBe('--threads must be an integer >= 1, got 0');
    expect(problem({ seed: 1.5 })).toBe('--seed must be an integer, got 1.5');
    expect(problem({ activation: 'swish' })).toBe(
      '--activation must be one of relu, leaky_relu, prelu, sigmoid, tanh, linear; got "swish"',
    );
    expect(problem({ optimizer: 'rmsprop' })).toMatch(/^--optimizer must be one of sgd, adam; got "rmsprop"$/);
    expect(problem({ schedule: 'linear' })).toMatch(/^--schedule must be one of constant, step, cosine/);
    expect(problem({ init: 'he' })).toMatch(/^--init must be one of auto, kaiming_uniform/);
    expect(problem({ backend: 'gpu' })).toMatch(/^--backend must be one of auto, native, wasm, reference; got "gpu"$/);
  });

  it('checks layers: at least two positive integers', () => {
    expect(problem({ layers: [784] })).toBe('--layers needs at least 2 sizes (inputs and classes), got [784]');
    expect(problem({ layers: [784, 0, 10] })).toBe('--layers entry 2 must hold positive integers, got 0');
    expect(problem({ layers: [784, 12.5, 10] })).toBe('--layers entry 2 must hold positive integers, got 12.5');
    expect(problem({ layers: '784,10' }, file)).toMatch(/^config\.json: "layers" must be a list of layer sizes/);
    expect(parseConfigPart({ layers: [64, 16, 10] }, cli)).toEqual({ layers: [64, 16, 10] });
  });

  it('allows any finite alpha, negative and above 1', () => {
    expect(parseConfigPart({ alpha: -0.5 }, cli)).toEqual({ alpha: -0.5 });
    expect(parseConfigPart({ alpha: 3 }, cli)).toEqual({ alpha: 3 });
    expect(problem({ alpha: Infinity })).toBe('--alpha must be a finite number, got Infinity');
  });

  it('names the file and key for config files, rejects unknown keys and wrong types', () => {
    expect(problem({ lr: -1 }, file)).toBe('config.json: "lr" must be > 0, got -1');
    expect(problem({ lrate: 0.1 }, file)).toBe('config.json: unknown key "lrate" (did you mean "lr"?)');
    expect(problem({ 'batch-size': 8 }, file)).toBe('config.json: unknown key "batch-size" (did you mean "batchSize"?)');
    expect(problem({ zzzzzzzz: 1 }, file)).toBe('config.json: unknown key "zzzzzzzz"');
    expect(problem({ epochs: '5' }, file)).toBe('config.json: "epochs" must be an integer, got "5"');
    expect(problem({ lr: '0.1' }, file)).toBe('config.json: "lr" must be a number, got "0.1"');
    expect(problem({ nesterov: 'yes' }, file)).toBe('config.json: "nesterov" must be true or false, got "yes"');
    expect(problem([1, 2], file)).toMatch(/^config\.json: must be a JSON object/);
    expect(problem(null, file)).toMatch(/^config\.json: must be a JSON object/);
  });

  it('reports every problem at once', () => {
    const message = problem({ lr: -1, epochs: 0 }, file);
    expect(message).toContain('"lr" must be > 0');
    expect(message).toContain('"epochs" must be an integer >= 1');
  });

  it('layers defaults <- file <- command line and remembers where each value came from', () => {
    const { config, sources } = resolveConfig(base, [
      { values: { lr: 0.2, epochs: 3 }, source: file },
      { values: { lr: 0.3 }, source: cli },
    ]);
    expect(config.lr).toBe(0.3);
    expect(config.epochs).toBe(3);
    expect(config.batchSize).toBe(64);
    expect(sources.lr).toEqual(cli);
    expect(sources.epochs).toEqual(file);
    expect(sources.batchSize).toEqual({ kind: 'default' });
  });

  it('suggests keys for typos', () => {
    expect(suggestKey('epoch')).toBe('epochs');
    expect(suggestKey('val_split')).toBe('valSplit');
    expect(suggestKey('completelyunrelated')).toBeUndefined();
  });
});

describe('checks against the data', () => {
  const data = { features: 64, height: 8, width: 8, classes: 10, trainCount: 180 };

  it('accepts a matching config', () => {
    expect(() => checkConfigAgainstData({ layers: [64, 16, 10], batchSize: 180 }, data)).not.toThrow();
  });

  it('names --layers and both numbers when the input size is wrong', () => {
    expect(() => checkConfigAgainstData({ layers: [784, 16, 10], batchSize: 8 }, data)).toThrow(
      '--layers starts with 784 inputs but the data has 64 pixels per image (8x8)',
    );
  });

  it('names --layers and both numbers when the class count is wrong', () => {
    expect(() => checkConfigAgainstData({ layers: [64, 16, 7], batchSize: 8 }, data)).toThrow(
      '--layers ends with 7 outputs but the data has 10 classes',
    );
  });

  it('rejects a batch larger than the training split, naming the source', () => {
    expect(() => checkConfigAgainstData({ layers: [64, 10], batchSize: 181 }, data)).toThrow(
      '--batch-size 181 is larger than the training split (180 images)',
    );
    expect(() =>
      checkConfigAgainstData({ layers: [64, 10], batchSize: 500 }, data, { batchSize: file }),
    ).toThrow('config.json: "batchSize" 500 is larger than the training split (180 images)');
  });
});
