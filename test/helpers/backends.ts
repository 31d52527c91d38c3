/**
 * Which backends the shared suites run against.
 *
 * - reference is always tested.
 * - native and wasm are tested when tryLoadBackend() loads them; otherwise their suites are
 *   registered as skipped, with the load reason in the suite name so it shows in the report.
 * - DENSETRAIN_REQUIRE_BACKENDS=native,wasm (CI) turns a backend that does not load into a test
 *   FAILURE carrying the load reason, so a broken build cannot pass as "skipped".
 */
import { describe, it } from 'vitest';
import { BACKEND_NAMES, tryLoadBackend } from '../../src/kernels/index.js';
import type { BackendName, Kernels } from '../../src/kernels/types.js';

export interface LoadedBackend {
  name: BackendName;
  kernels: Kernels;
}

export interface MissingBackend {
  name: BackendName;
  reason: string;
  required: boolean;
}

/** Parses DENSETRAIN_REQUIRE_BACKENDS; unknown names are reported as errors (never ignored). */
export function requiredBackends(env: NodeJS.ProcessEnv = process.env): { names: BackendName[]; errors: string[] } {
  const raw = env['DENSETRAIN_REQUIRE_BACKENDS'];
  const names: BackendName[] = [];
  const errors: string[] = [];
  if (raw === undefined || raw.trim() === '') return { names, errors };
  for (const part of raw.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    if ((BACKEND_NAMES as readonly string[]).includes(part)) names.push(part as BackendName);
    else errors.push(`DENSETRAIN_REQUIRE_BACKENDS names an unknown backend ${JSON.stringify(part)} (known: ${BACKEND_NAMES.join(', ')})`);
  }
  return { names, errors };
}

type Status = { loaded: LoadedBackend[]; missing: MissingBackend[]; configErrors: string[] };
let cached: Status | undefined;

/**
 * Every backend that loads (reference first), and the ones that do not, with reasons and whether
 * DENSETRAIN_REQUIRE_BACKENDS requires them. `env` and `load` are injectable for the selection tests.
 */
export function backendStatus(env: NodeJS.ProcessEnv = process.env, load: typeof tryLoadBackend = tryLoadBackend): Status {
  const useCache = env === process.env && load === tryLoadBackend;
  if (useCache && cached) return cached;
  const { names: required, errors } = requiredBackends(env);
  const loaded: LoadedBackend[] = [];
  const missing: MissingBackend[] = [];
  for (const name of ['reference', 'native', 'wasm'] as const) {
    const result = load(name);
    if (result.ok) loaded.push({ name, kernels: result.kernels });
    else missing.push({ name, reason: result.reason, required: required.includes(name) });
  }
  const status = { loaded, missing, configErrors: errors };
  if (useCache) cached = status;
  return status;
}

/** The failures a suite must report: bad DENSETRAIN_REQUIRE_BACKENDS entries and required backends that do not load. */
export function requiredBackendFailures(status: Status = backendStatus()): string[] {
  return [
    ...status.configErrors,
    ...status.missing
      .filter((m) => m.required)
      .map((m) => `DENSETRAIN_REQUIRE_BACKENDS requires the ${m.name} backend, but it cannot load: ${m.reason}`),
  ];
}

/** All backends under test (reference always first). */
export function loadedBackends(): LoadedBackend[] {
  return backendStatus().loaded;
}

/** Backends under test other than reference (the ones compared against the oracle). */
export function nonReferenceBackends(): LoadedBackend[] {
  return loadedBackends().filter((b) => b.name !== 'reference');
}

/**
 * Registers, in the calling test file, one failing test per required-but-missing backend (and per
 * bad DENSETRAIN_REQUIRE_BACKENDS entry), and one skipped suite per optional missing backend.
 * Every suite file calls this once so that a CI run cannot go green with a backend absent.
 */
export function registerMissingBackends(suite: string): void {
  const status = backendStatus();
  for (const failure of requiredBackendFailures(status)) {
    it(`${suite}: ${failure.slice(0, 80)}`, () => {
      throw new Error(failure);
    });
  }
  for (const m of status.missing.filter((x) => !x.required)) {
    describe.skip(`${suite}: ${m.name} backend not loaded (${m.reason})`, () => {
      it('would run here', () => undefined);
    });
  }
}
