/**
 * Finds the programs a file defines: every KernelDef (or bare Program) a TS/JS module exports,
 * directly or one level inside an exported array or record (an `ops/` library), or the one program
 * of a `.tsr` text-form file.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fail, isTesseraError } from '../errors.js';
import type { Program } from '../ir/graph.js';

export interface LoadedProgram {
  readonly program: Program;
  /** Where it came from: the export path (`library[2]`) or the file, for messages. */
  readonly origin: string;
  /** From a library op spec (`{ def, sampleDims, tolerance }`): the dims it is tested at. */
  readonly sampleDims?: Readonly<Record<string, number>>;
  /** From a library op spec: the bigger dims it is benchmarked (and tuned) at. */
  readonly benchDims?: Readonly<Record<string, number>>;
  /** From a library op spec: the tolerance the op promises. */
  readonly tolerance?: { readonly rtol: number; readonly atol: number };
}

const MODULE_EXTS = new Set(['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs', '.tsx']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

const looksLikeProgram = (p: unknown): p is Program =>
  isRecord(p) && typeof p['name'] === 'string' && Array.isArray(p['inputs']) && Array.isArray(p['outputs']) && p['outputs'].every((o) => isRecord(o) && isRecord(o['node']));

const numberRecord = (v: unknown): v is Record<string, number> => isRecord(v) && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'number');

/**
 * A KernelDef (`{ program }`), a bare Program, or a library op spec (`{ def: KernelDef, sampleDims,
 * tolerance }`). Duck-typed, so definitions built by another copy of the DSL module still count.
 */
export function asLoaded(v: unknown, origin: string): LoadedProgram | undefined {
  if (!isRecord(v)) return undefined;
  if (looksLikeProgram(v['program'])) return { program: v['program'], origin };
  if (looksLikeProgram(v)) return { program: v, origin };
  const def = v['def'];
  if (isRecord(def) && looksLikeProgram(def['program'])) {
    const tol = v['tolerance'];
    return {
      program: def['program'],
      origin,
      ...(numberRecord(v['sampleDims']) ? { sampleDims: v['sampleDims'] } : {}),
      ...(numberRecord(v['benchDims']) ? { benchDims: v['benchDims'] } : {}),
      ...(numberRecord(tol) && typeof tol['rtol'] === 'number' && typeof tol['atol'] === 'number' ? { tolerance: { rtol: tol['rtol'], atol: tol['atol'] } } : {}),
    };
  }
  return undefined;
}

/**
 * Programs among a module's exports, in export-name order (or only export `only`), looking one level
 * into arrays and plain records.
 */
export function programsOf(mod: Readonly<Record<string, unknown>>, file: string, only?: string): LoadedProgram[] {
  const found: LoadedProgram[] = [];
  const visit = (v: unknown, origin: string, depth: number): void => {
    const lp = asLoaded(v, origin);
    if (lp) {
      found.push(lp);
      return;
    }
    if (depth > 0 || !isRecord(v)) return;
    if (Array.isArray(v)) v.forEach((x, i) => visit(x, `${origin}[${i}]`, depth + 1));
    else if (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null) {
      for (const [k, x] of Object.entries(v)) visit(x, `${origin}.${k}`, depth + 1);
    }
  };
  if (only !== undefined && !(only in mod)) fail('E_ARG', `'${file}' has no export named '${only}'`);
  for (const key of only !== undefined ? [only] : Object.keys(mod).sort()) visit(mod[key], key, 0);
  // The same program exported twice is one program; two different programs may not share a name.
  const byName = new Map<string, LoadedProgram>();
  for (const lp of found) {
    const prev = byName.get(lp.program.name);
    if (!prev) byName.set(lp.program.name, lp);
    else if (prev.program !== lp.program) {
      fail('E_ARG', `${file}: two different programs are named '${lp.program.name}' (exports ${prev.origin} and ${lp.origin}); rename one`);
    }
  }
  return [...byName.values()];
}

/** Loads `file` (relative to the current directory) and returns its programs; E_ARG when it has none. */
export async function loadPrograms(file: string, only?: string): Promise<LoadedProgram[]> {
  const abs = resolve(file);
  if (!existsSync(abs)) fail('E_ARG', `cannot load '${file}': no such file`);
  if (statSync(abs).isDirectory()) fail('E_ARG', `cannot load '${file}': it is a directory (pass a .ts, .js or .tsr file, e.g. ${file}/index.ts)`);
  const ext = extname(abs);
  if (ext === '.tsr') {
    const { parseProgram } = await import('../ir/text/index.js');
    const program = parseProgram(readFileSync(abs, 'utf8'), file);
    return [{ program, origin: file }];
  }
  if (!MODULE_EXTS.has(ext)) fail('E_ARG', `cannot load '${file}': expected a .ts/.js module exporting kernel() definitions or a .tsr text-form file`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
  } catch (e) {
    if (isTesseraError(e)) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(`cannot load '${file}': ${msg}`, { cause: e });
  }
  const programs = programsOf(mod, file, only);
  if (programs.length === 0) fail('E_ARG', `'${file}' exports no programs: export the value kernel(...) returns (or an array/record of them)`);
  return programs;
}
