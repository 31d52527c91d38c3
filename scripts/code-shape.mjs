#!/usr/bin/env node
// Long files and long functions: `node scripts/code-shape.mjs [--lines 400] [--function-lines 80] [DIR...]`
// (default: src native assembly, relative to the folder it runs in; `npm run shape`).
// TypeScript and AssemblyScript are read with the TypeScript compiler's parser (functions,
// methods, arrow functions and function expressions; a function's lines run from its first
// line to its closing brace, nested functions counted in their parent too). C and C++ are read
// with universal-ctags (`end:` field), skipped with a note when ctags is not installed.
// Prints one line per finding and a count; a function over the limit is listed with the reason
// written next to it when its leading comment says `long because` (else `no reason given`).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const value = Number(args[i + 1]);
  args.splice(i, 2);
  return value;
};
const fileLimit = option('--lines', 400);
const functionLimit = option('--function-lines', 80);
const roots = args.length > 0 ? args : ['src', 'native', 'assembly'];

const SKIP = new Set(['node_modules', 'build', 'dist', 'prebuilds', 'client']);
function walk(dir, out = []) {
  let entries;
  try { entries = readdirSync(dir, { withFileTypes: true }); } catch { return out; }
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) { if (!SKIP.has(e.name)) walk(full, out); }
    else if (/\.(ts|cc|cpp|h|hpp|c)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

const files = roots.flatMap((r) => (statSync(r, { throwIfNoEntry: false })?.isDirectory() ? walk(r) : [r])).sort();
const lineCount = (text) => text.split('\n').length - (text.endsWith('\n') ? 1 : 0);

function tsFunctions(file, text) {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found = [];
  const lineOf = (pos) => source.getLineAndCharacterOfPosition(pos).line + 1;
  const visit = (node, owner) => {
    let name = owner;
    if (ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isConstructorDeclaration(node) || ts.isGetAccessor(node) || ts.isSetAccessor(node) || ts.isArrowFunction(node) || ts.isFunctionExpression(node)) {
      if (node.body) {
        name = node.name && ts.isIdentifier(node.name) ? node.name.text : ts.isConstructorDeclaration(node) ? 'constructor' : owner ?? '(anonymous)';
        if (ts.isMethodDeclaration(node) || ts.isConstructorDeclaration(node)) {
          const cls = node.parent && ts.isClassLike(node.parent) && node.parent.name ? node.parent.name.text + '.' : '';
          name = cls + name;
        }
        const start = lineOf(node.getStart(source));
        const end = lineOf(node.end);
        const comments = ts.getLeadingCommentRanges(text, node.getFullStart()) ?? [];
        const statement = ts.isVariableDeclaration(node.parent) ? node.parent.parent?.parent : undefined;
        const outer = statement ? ts.getLeadingCommentRanges(text, statement.getFullStart()) ?? [] : [];
        const comment = flatten([...comments, ...outer].map((c) => text.slice(c.pos, c.end)).join('\n'));
        const reason = /long because ([^.]*)/i.exec(comment)?.[1]?.trim();
        found.push({ name, start, lines: end - start + 1, reason });
      }
    } else if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name)) {
      name = node.name.text;
    }
    ts.forEachChild(node, (child) => visit(child, name));
  };
  visit(source, undefined);
  return found;
}

/** A comment's text on one line: the comment markers and line breaks gone. */
function flatten(comment) {
  return comment.replace(/\/\*+|\*\/|^\s*\*\s?|^\s*\/\/\s?/gm, ' ').replace(/\s+/g, ' ');
}

let ctagsMissing = false;
function cppFunctions(file, text) {
  let out;
  try {
    out = execFileSync('ctags', ['--fields=+ne', '--c++-kinds=f', '--c-kinds=f', '-o', '-', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch { ctagsMissing = true; return []; }
  const lines = text.split('\n');
  return out.split('\n').filter(Boolean).flatMap((row) => {
    const fields = row.split('\t');
    const start = Number(/\bline:(\d+)/.exec(row)?.[1]);
    const end = Number(/\bend:(\d+)/.exec(row)?.[1]);
    if (!start || !end) return [];
    const above = flatten(lines.slice(Math.max(0, start - 6), start - 1).join('\n'));
    const reason = /long because ([^.]*)/i.exec(above)?.[1]?.trim();
    return [{ name: fields[0], start, lines: end - start + 1, reason }];
  });
}

const longFiles = [];
const longFunctions = [];
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  const lines = lineCount(text);
  if (lines > fileLimit) longFiles.push({ file, lines });
  const functions = file.endsWith('.ts') ? tsFunctions(file, text) : cppFunctions(file, text);
  for (const f of functions) if (f.lines > functionLimit) longFunctions.push({ file, ...f });
}
longFiles.sort((a, b) => b.lines - a.lines);
longFunctions.sort((a, b) => b.lines - a.lines);
console.log(`files over ${fileLimit} lines: ${longFiles.length} (of ${files.length} read under ${roots.join(' ')})`);
for (const f of longFiles) console.log(`  ${f.lines}  ${f.file}`);
const unexplained = longFunctions.filter((f) => !f.reason).length;
console.log(`functions over ${functionLimit} lines: ${longFunctions.length} (${unexplained} without a reason)`);
for (const f of longFunctions) console.log(`  ${f.lines}  ${f.file}:${f.start} ${f.name}${f.reason ? `  (long because ${f.reason})` : '  (no reason given)'}`);
if (ctagsMissing) console.log('note: ctags (universal-ctags) is not installed: C/C++ functions were not measured');
