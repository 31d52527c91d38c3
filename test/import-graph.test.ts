/**
 * Imports point one way (scripts/import-graph.mjs LAYERS: base < kernels < data < model < optim
 * < train < export < report < experiments < bench < view < cli < api) with no cycles, type-only
 * and dynamic imports included. `npm run graph` prints the graph this test reads.
 */
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without type declarations
import * as graphScript from '../scripts/import-graph.mjs';

interface Cycle {
  path: string[];
  modules: number;
}
interface Violation {
  from: string;
  to: string;
}
const { buildGraph, findCycles, findViolations, specifiersOf } = graphScript as {
  buildGraph(): Map<string, string[]>;
  findCycles(graph: Map<string, string[]>): Cycle[];
  findViolations(graph: Map<string, string[]>): Violation[];
  specifiersOf(file: string, text: string): string[];
};

describe('the import graph of src/', () => {
  const graph = buildGraph();

  it('reads the whole tree', () => {
    expect(graph.size).toBeGreaterThan(80);
    expect(graph.get('train/train.ts')).toContain('model/mlp.ts');
    expect(graph.get('cli/main.ts')).toContain('cli/commands/train.ts');
  });

  it('has no cycle', () => {
    expect(findCycles(graph).map((c) => c.path.join(' -> '))).toEqual([]);
  });

  it('has no import against the layer order', () => {
    expect(findViolations(graph).map((v) => `${v.from} -> ${v.to}`)).toEqual([]);
  });
});

describe('the checker', () => {
  it('sees static, type-only, re-export, dynamic and import-type specifiers', () => {
    const text = [
      "import { a } from './a.js';",
      "import type { B } from '../b.js';",
      "export { c } from './c.js';",
      "const d = await import('./d.js');",
      "let e: typeof import('./e.js');",
      "import fs from 'node:fs';",
    ].join('\n');
    expect(specifiersOf('x.ts', text)).toEqual(['./a.js', '../b.js', './c.js', './d.js', './e.js', 'node:fs']);
  });

  it('finds a cycle and an import up the layers', () => {
    const bad = new Map([
      ['model/mlp.ts', ['train/checkpoint.ts']],
      ['train/checkpoint.ts', ['optim/optimizer.ts']],
      ['optim/optimizer.ts', ['model/mlp.ts']],
      ['kernels/index.ts', []],
    ]);
    const cycles = findCycles(bad);
    expect(cycles).toHaveLength(1);
    expect(cycles[0]!.modules).toBe(3);
    expect(cycles[0]!.path).toEqual(['model/mlp.ts', 'train/checkpoint.ts', 'optim/optimizer.ts', 'model/mlp.ts']);
    // train -> optim and optim -> model point down: only model -> train is against the order.
    expect(findViolations(bad).map((v) => `${v.from} -> ${v.to}`)).toEqual(['model/mlp.ts -> train/checkpoint.ts']);
    // A module outside src/'s layers (the CLI reaching into bench/ at the repository root) is refused too.
    expect(findViolations(new Map([['cli/commands/bench.ts', ['../bench/run.ts']]]))).toHaveLength(1);
  });
});
