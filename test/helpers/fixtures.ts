/**
 * Typed loading of the PyTorch float64 golden fixtures (test/fixtures/golden, see FORMAT.md).
 * Parsing goes through zod schemas, so a fixture that does not have the documented shape fails
 * loudly instead of feeding `undefined` into a comparison.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

export const GOLDEN_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'golden');

const tensorSchema = z
  .object({ shape: z.array(z.number().int().nonnegative()), data: z.array(z.number()) })
  .refine((t) => t.shape.reduce((a, b) => a * b, 1) === t.data.length, 'data length does not match shape');
export type TensorJson = z.infer<typeof tensorSchema>;

const tensorMap = z.record(z.string(), tensorSchema);

const activationSchema = z.object({
  name: z.enum(['relu', 'leaky_relu', 'prelu', 'sigmoid', 'tanh', 'linear']),
  alpha: z.number().optional(),
  init: z.array(z.number()).optional(),
});
export type ActivationJson = z.infer<typeof activationSchema>;

const common = {
  case: z.string(),
  dtype: z.literal('float64'),
  activation: activationSchema,
  layer_sizes: z.tuple([z.number().int(), z.number().int(), z.number().int(), z.number().int()]),
  batch: z.number().int().positive(),
  num_classes: z.number().int().positive(),
  lambda: z.number(),
  param_order: z.array(z.string()),
  x: tensorSchema,
  y: tensorSchema,
};

const mlpCaseSchema = z.object({
  ...common,
  params: tensorMap,
  forward: z.object({
    z1: tensorSchema,
    h1: tensorSchema,
    z2: tensorSchema,
    h2: tensorSchema,
    logits: tensorSchema,
    log_probs: tensorSchema,
    probs: tensorSchema,
  }),
  per_sample_ce: tensorSchema,
  data_loss: z.number(),
  l2_sum_sq_weights: z.number(),
  loss_lambda0: z.number(),
  loss: z.number(),
  dloss_dlogits: tensorSchema,
  grads: tensorMap,
  grads_lambda0: tensorMap,
  zero_preactivation: z.object({ sample: z.number().int(), units: z.array(z.number().int()) }).optional(),
  hard: z.object({ target_max_abs_logit: z.number(), input_scale: z.number(), max_abs_logit: z.number() }).optional(),
});
export type MlpCase = z.infer<typeof mlpCaseSchema>;

const optCaseSchema = z.object({
  ...common,
  optimizer: z.object({
    type: z.enum(['sgd', 'sgd_momentum', 'adam']),
    lr: z.number(),
    momentum: z.number().optional(),
    dampening: z.number().optional(),
    nesterov: z.boolean().optional(),
    beta1: z.number().optional(),
    beta2: z.number().optional(),
    eps: z.number().optional(),
    weight_decay: z.number(),
    amsgrad: z.boolean().optional(),
  }),
  initial_params: tensorMap,
  losses: z.array(z.number()).length(4),
  steps: z
    .array(
      z.object({
        step: z.number().int(),
        loss_before: z.number(),
        grads: tensorMap,
        params_after: tensorMap,
        state_after: z.object({
          momentum_buffer: tensorMap.optional(),
          step: z.number().int().optional(),
          exp_avg: tensorMap.optional(),
          exp_avg_sq: tensorMap.optional(),
        }),
      }),
    )
    .length(3),
});
export type OptCase = z.infer<typeof optCaseSchema>;

const manifestSchema = z.object({
  files: z.array(z.object({ file: z.string(), case: z.string(), bytes: z.number().int(), sha256: z.string() })),
});

export const MLP_CASES = [
  'relu',
  'leaky_relu_0.01',
  'leaky_relu_0.2',
  'leaky_relu_neg0.5',
  'sigmoid',
  'tanh',
  'prelu',
  'linear',
  'relu_zero',
  'leaky_relu_0.2_zero',
  'hard_logits_100',
  'hard_logits_1000',
] as const;
export const OPT_CASES = ['opt_sgd', 'opt_momentum', 'opt_adam'] as const;

function readJson(file: string): unknown {
  return JSON.parse(readFileSync(join(GOLDEN_DIR, file), 'utf8')) as unknown;
}

function parse<T>(schema: z.ZodType<T>, value: unknown, file: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new Error(`fixture ${file} does not match its schema: ${result.error.message}`);
  return result.data;
}

export function loadMlpCase(name: (typeof MLP_CASES)[number]): MlpCase {
  return parse(mlpCaseSchema, readJson(`${name}.json`), `${name}.json`);
}

export function loadOptCase(name: (typeof OPT_CASES)[number]): OptCase {
  return parse(optCaseSchema, readJson(`${name}.json`), `${name}.json`);
}

/** The manifest's files whose size or sha256 differ from what is on disk (empty when intact). */
export function manifestMismatches(): string[] {
  const manifest = parse(manifestSchema, readJson('manifest.json'), 'manifest.json');
  const bad: string[] = [];
  for (const f of manifest.files) {
    const bytes = readFileSync(join(GOLDEN_DIR, f.file));
    const sha = createHash('sha256').update(bytes).digest('hex');
    if (bytes.length !== f.bytes || sha !== f.sha256) bad.push(`${f.file}: ${bytes.length} bytes, sha256 ${sha}`);
  }
  return bad;
}

/** A fixture tensor by name, failing clearly when absent. */
export function pick(map: Record<string, TensorJson>, key: string): TensorJson {
  const t = map[key];
  if (!t) throw new Error(`fixture tensor ${key} is missing`);
  return t;
}
