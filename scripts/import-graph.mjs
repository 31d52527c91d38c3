#!/usr/bin/env node
// The import graph of src/ and the rules it must keep: no cycles, and every import points down
// the layer order below. `npm run graph` prints it (one line per module: what it imports);
// `npm run graph -- --layers` prints the layer-to-layer edges only; `--check` prints only the
// problems. Exit code 1 when there is a cycle or an import against the layer order.
// test/import-graph.test.ts runs the same check. Type-only imports count: a cycle through types
// is still two modules that cannot be understood one without the other.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/**
 * The layers, lowest first. A module may import from its own layer and from any lower one.
 * The first matching prefix (relative to src/) names a module's layer. docs/DESIGN.md explains
 * the order.
 */
export const LAYERS = [
  { name: 'base', prefixes: ['rng.ts', 'regular-file.ts', 'show-value.ts', 'input-error.ts', 'first-line.ts', 'format.ts'] },
  { name: 'kernels', prefixes: ['kernels/'] },
  { name: 'data', prefixes: ['data/'] },
  { name: 'model', prefixes: ['model/'] },
  { name: 'optim', prefixes: ['optim/'] },
  { name: 'train', prefixes: ['train/'] },
  { name: 'export', prefixes: ['export/'] },
  { name: 'report', prefixes: ['report/'] },
  { name: 'experiments', prefixes: ['experiments/'] },
  { name: 'bench', prefixes: ['bench/'] },
  { name: 'view', prefixes: ['view/'] },
  { name: 'cli', prefixes: ['cli/'] },
  { name: 'api', prefixes: ['index.ts'] },
];

const here = path.dirname(fileURLToPath(import.meta.url));
export const SRC = path.resolve(here, '..', 'src');

function walk(dir, out = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (full === path.join(SRC, 'view', 'client')) continue; // the browser script: own tsconfig, imports nothing of src/
      walk(full, out);
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

/** Every module specifier a file names: static, re-export, dynamic import() and import types. */
export function specifiersOf(fileName, text) {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const found = [];
  const visit = (node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      found.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [arg] = node.arguments;
      if (arg && ts.isStringLiteralLike(arg)) found.push(arg.text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      found.push(node.argument.literal.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** Module graph of src/: key and values are paths relative to src/ ('train/train.ts'). */
export function buildGraph(srcDir = SRC) {
  const graph = new Map();
  for (const file of walk(srcDir).sort()) {
    const from = path.relative(srcDir, file).split(path.sep).join('/');
    const targets = new Set();
    for (const spec of specifiersOf(file, readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) continue; // packages and node: builtins
      const resolved = path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts'));
      targets.add(path.relative(srcDir, resolved).split(path.sep).join('/'));
    }
    graph.set(from, [...targets].sort());
  }
  return graph;
}

export function layerOf(module) {
  const index = LAYERS.findIndex((layer) => layer.prefixes.some((p) => module === p || module.startsWith(p)));
  return index;
}

/**
 * Elementary cycles can be many; this lists one per strongly connected component (Tarjan): the
 * shortest path from the component's first module back to itself, and how many modules the
 * component tangles together.
 */
export function findCycles(graph) {
  let counter = 0;
  const index = new Map(), low = new Map(), onStack = new Set(), stack = [], components = [];
  const strong = (v) => {
    index.set(v, counter); low.set(v, counter); counter++;
    stack.push(v); onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) { strong(w); low.set(v, Math.min(low.get(v), low.get(w))); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) === index.get(v)) {
      const component = [];
      let w;
      do { w = stack.pop(); onStack.delete(w); component.push(w); } while (w !== v);
      const selfLoop = (graph.get(v) ?? []).includes(v);
      if (component.length > 1 || selfLoop) components.push(component);
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) strong(v);
  // One readable path per component: a shortest way from its first member back to itself.
  return components.map((component) => {
    const members = new Set(component);
    const start = [...members].sort()[0];
    const previous = new Map([[start, null]]);
    const queue = [start];
    while (queue.length > 0) {
      const v = queue.shift();
      for (const w of graph.get(v) ?? []) {
        if (!members.has(w)) continue;
        if (w === start) {
          const loop = [start];
          for (let u = v; u !== start; u = previous.get(u)) loop.splice(1, 0, u);
          return { path: [...loop, start], modules: component.length };
        }
        if (!previous.has(w)) { previous.set(w, v); queue.push(w); }
      }
    }
    return { path: [start, start], modules: 1 };
  });
}

/** Imports that point up the layer order, or from or to a module with no layer. */
export function findViolations(graph) {
  const problems = [];
  const name = (i) => (i < 0 ? '(no layer)' : LAYERS[i].name);
  for (const [from, targets] of graph) {
    const a = layerOf(from);
    for (const to of targets) {
      const b = layerOf(to);
      if (a < 0 || b < 0 || b > a) problems.push({ from, to, fromLayer: name(a), toLayer: name(b) });
    }
  }
  return problems;
}

function layerEdges(graph) {
  const edges = new Map();
  for (const [from, targets] of graph) {
    for (const to of targets) {
      const a = LAYERS[layerOf(from)]?.name ?? '?', b = LAYERS[layerOf(to)]?.name ?? '?';
      if (a === b) continue;
      const key = `${a} -> ${b}`;
      edges.set(key, (edges.get(key) ?? 0) + 1);
    }
  }
  return edges;
}

function main(argv) {
  const graph = buildGraph();
  const cycles = findCycles(graph);
  const violations = findViolations(graph);
  if (argv.includes('--layers')) {
    console.log(`layers, lowest first: ${LAYERS.map((l) => l.name).join(' < ')}`);
    for (const [edge, count] of layerEdges(graph)) console.log(`${edge}  (${count} import${count === 1 ? '' : 's'})`);
  } else if (!argv.includes('--check')) {
    for (const [from, targets] of graph) console.log(`${from}${targets.length ? ' -> ' + targets.join(', ') : ''}`);
  }
  const edges = [...graph.values()].reduce((n, t) => n + t.length, 0);
  console.log(`${graph.size} modules, ${edges} imports, ${cycles.length} cycle${cycles.length === 1 ? '' : 's'}, ${violations.length} import${violations.length === 1 ? '' : 's'} against the layer order`);
  for (const cycle of cycles) console.log(`cycle (${cycle.modules} modules tangled): ${cycle.path.join(' -> ')}`);
  for (const v of violations) console.log(`against the layers: ${v.from} (${v.fromLayer}) -> ${v.to} (${v.toLayer})`);
  return cycles.length === 0 && violations.length === 0 ? 0 : 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
