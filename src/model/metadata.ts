/**
 * The metadata of densetrain model files (safetensors `__metadata__`): format version,
 * architecture, pixel scaling, class names; each field parsed with a schema and refused with a
 * CheckpointError naming the file and the field. train/metadata.ts adds the checkpoint's fields.
 */
import { z } from 'zod';
import { ACTIVATION_NAMES, type ActivationName } from '../kernels/types.js';
import type { PixelScaling } from '../data/types.js';
import { showValue } from '../show-value.js';
import { CheckpointError } from './safetensors.js';
import type { ModelArchitecture } from './types.js';

/** The only metadata version densetrain reads and writes. */
export const FORMAT_VERSION = '1';

const finite = z.number();

const architectureSchema = z.object({
  layers: z.array(z.number().int().min(1)).min(2),
  activation: z.enum(ACTIVATION_NAMES as unknown as readonly [ActivationName, ...ActivationName[]]),
  alpha: finite,
});

const scalingSchema = z.union([
  z.object({ kind: z.literal('unit') }),
  z.object({ kind: z.literal('standardize'), mean: finite, std: finite.gt(0) }),
  z.null(),
]);

const classNamesSchema = z.array(z.string()).nullable();

/** A message for zod's built-in checks, in the words the config's messages use. */
function issueMessage(iss: z.core.$ZodRawIssue): string {
  const got = `got ${showValue(iss.input)}`;
  switch (iss.code) {
    case 'invalid_type':
      return `must be ${iss.expected === 'int' ? 'an integer' : iss.expected === 'number' ? 'a finite number' : `${/^[aeiou]/.test(String(iss.expected)) ? 'an' : 'a'} ${iss.expected}`}, ${got}`;
    case 'too_small':
      return iss.origin === 'array' ? `must hold at least ${String(iss.minimum)} entries` : `must be ${iss.inclusive ? '>=' : '>'} ${String(iss.minimum)}, ${got}`;
    case 'too_big':
      return iss.origin === 'array' ? `must hold at most ${String(iss.maximum)} entries` : `must be ${iss.inclusive ? '<=' : '<'} ${String(iss.maximum)}, ${got}`;
    case 'invalid_value':
      return `must be ${iss.values.map((v) => showValue(v)).join(' or ')}, ${got}`;
    case 'invalid_union':
      return `is not a valid value, ${got}`;
    default:
      return `is not valid (${iss.message ?? iss.code}), ${got}`;
  }
}

export function parseField<T>(file: string, key: string, text: string | undefined, schema: z.ZodType<T>): T {
  if (text === undefined) throw new CheckpointError(`${file}: metadata has no ${JSON.stringify(key)} entry`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CheckpointError(`${file}: metadata ${JSON.stringify(key)} is not valid JSON`);
  }
  const result = schema.safeParse(json, { error: issueMessage });
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = [key, ...issue.path.map(String)].join('.');
    throw new CheckpointError(`${file}: metadata field ${field} ${issue.message}`);
  }
  return result.data;
}

export interface ModelMetadata {
  architecture: ModelArchitecture;
  scaling: PixelScaling | null;
  classNames: string[] | null;
}

export function checkVersion(file: string, meta: Record<string, string>, kind: string): void {
  if (meta['version'] !== FORMAT_VERSION) {
    throw new CheckpointError(`${file}: metadata field version: ${kind} version ${showValue(meta['version'] ?? null)} is not supported (this densetrain reads version ${FORMAT_VERSION})`);
  }
}

/** The metadata of a densetrain model file (or the model part of a checkpoint), checked. */
export function parseModelMetadata(file: string, meta: Record<string, string>): ModelMetadata {
  checkVersion(file, meta, meta['format'] === 'densetrain-checkpoint' ? 'checkpoint' : 'model file');
  const architecture = parseField(file, 'architecture', meta['architecture'], architectureSchema);
  // Files written before scaling / class names were recorded have neither.
  const scaling = meta['scaling'] === undefined ? null : parseField(file, 'scaling', meta['scaling'], scalingSchema);
  const classNames = meta['classNames'] === undefined ? null : parseField(file, 'classNames', meta['classNames'], classNamesSchema);
  const classes = architecture.layers[architecture.layers.length - 1]!;
  if (classNames !== null && classNames.length !== classes) {
    throw new CheckpointError(`${file}: metadata field classNames holds ${classNames.length} names for ${classes} classes`);
  }
  return { architecture, scaling, classNames };
}
