/**
 * The activation codes are written once per language and the three must agree: the TypeScript
 * table (src/kernels/activation-codes.ts, used by the native and wasm backends), the C++ enum
 * (native/src/kernel_api.h, also exported by the built addon as `activationCodes`) and the
 * AssemblyScript constants (assembly/elementwise.ts). A mismatch would make a backend compute
 * a different activation than the one asked for, silently.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ACTIVATION_CODES } from '../src/kernels/activation-codes.js';
import { loadNativeAddon } from '../src/kernels/native.js';
import { ACTIVATION_NAMES } from '../src/kernels/types.js';
import { backendStatus, registerMissingBackends } from './helpers/backends.js';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const read = (...path: string[]) => readFileSync(join(ROOT, ...path), 'utf8');

/** kActLeakyRelu -> leaky_relu */
const snake = (camel: string) => camel.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();

/** The C++ enum ActKind (without kActCount) and kActivationNames, from the header's text. */
function cppCodes(): { byEnum: Record<string, number>; byNameTable: Record<string, number>; count: number } {
  const header = read('native', 'src', 'kernel_api.h');
  const body = /enum ActKind : int \{([^}]*)\}/.exec(header)?.[1];
  if (body === undefined) throw new Error('kernel_api.h has no enum ActKind');
  const byEnum: Record<string, number> = {};
  let count = -1;
  for (const [, name, value] of body.matchAll(/kAct(\w+)\s*=\s*(\d+)/g)) {
    if (name === 'Count') count = Number(value);
    else byEnum[snake(name!)] = Number(value);
  }
  const names = /kActivationNames\[kActCount\]\s*=\s*\{([^}]*)\}/.exec(header)?.[1];
  if (names === undefined) throw new Error('kernel_api.h has no kActivationNames');
  const byNameTable: Record<string, number> = {};
  [...names.matchAll(/"(\w+)"/g)].forEach(([, name], i) => (byNameTable[name!] = i));
  return { byEnum, byNameTable, count };
}

/** The ACT_* constants of assembly/elementwise.ts. */
function assemblyCodes(): Record<string, number> {
  const source = read('assembly', 'elementwise.ts');
  const codes: Record<string, number> = {};
  for (const [, name, value] of source.matchAll(/export const ACT_(\w+): i32 = (\d+);/g)) codes[name!.toLowerCase()] = Number(value);
  return codes;
}

describe('activation codes', () => {
  registerMissingBackends('activation codes');

  it('the TypeScript table names every activation once, with distinct codes 0..n-1', () => {
    expect(Object.keys(ACTIVATION_CODES).sort()).toEqual([...ACTIVATION_NAMES].sort());
    expect(Object.values(ACTIVATION_CODES).sort((a, b) => a - b)).toEqual(ACTIVATION_NAMES.map((_, i) => i));
  });

  it('the C++ enum, its name table and its count match the TypeScript table', () => {
    const cpp = cppCodes();
    expect(cpp.byEnum).toEqual(ACTIVATION_CODES);
    expect(cpp.byNameTable).toEqual(ACTIVATION_CODES);
    expect(cpp.count).toBe(ACTIVATION_NAMES.length);
  });

  it('the AssemblyScript constants match the TypeScript table', () => {
    expect(assemblyCodes()).toEqual(ACTIVATION_CODES);
  });

  const native = backendStatus().loaded.some((b) => b.name === 'native');
  it.skipIf(!native)('the built addon exports the same codes', () => {
    expect({ ...loadNativeAddon().activationCodes }).toEqual(ACTIVATION_CODES);
  });
});
