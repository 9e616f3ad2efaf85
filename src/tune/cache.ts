/**
 * The tuning cache on disk: one JSON file per (kernel, device, compiler version), holding the
 * winning parameters per set of dims it was tuned at. Keys hash the kernel IR as the default
 * schedule prints it, so any change to the program or the compiler's lowering misses the cache.
 * Writes go through a temp file and a rename, so an interrupted tune never leaves a broken entry.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { BackendRuntime } from '../runtime/backend.js';
import type { Candidate } from './candidates.js';

export const TUNER_VERSION = 1;

/** Part of every tuning cache key: bumped when code generation or the way candidates are timed changes. */
export const COMPILER_VERSION = 'tessera-0.1.9';

/** A runtime's key in the cache: its kind and adapter description. */
export function deviceKey(rt: BackendRuntime): string {
  return `${rt.info.kind}:${rt.info.description}`;
}

export interface TunedEntry {
  readonly dims: Readonly<Record<string, number>>;
  readonly params: Candidate;
  readonly medianMs: number;
  readonly defaultMs: number;
  readonly timing: 'device' | 'wall';
  /** Set when the search covered only some of the candidates (TuneOptions.candidates). */
  readonly narrowed?: true;
}

export interface TuneRecord {
  readonly key: string;
  readonly kernel: string;
  readonly device: string;
  readonly compiler: string;
  entries: TunedEntry[];
}

export function cacheDir(): string {
  return process.env['TESSERA_CACHE_DIR'] ? join(process.env['TESSERA_CACHE_DIR'], 'tune') : join(process.cwd(), '.tessera-cache', 'tune');
}

export function tuneKey(kernelText: string, device: string, compiler: string): string {
  return createHash('sha256').update(kernelText).update('\0').update(device).update('\0').update(compiler).update(`\0v${TUNER_VERSION}`).digest('hex').slice(0, 32);
}

/** A cache file's JSON, or undefined where it is missing or unreadable (a miss, never an error). */
export function readCacheFile(file: string): unknown {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** Writes a cache file through a temp file and a rename (an interrupted write leaves no broken file). */
export function writeCacheFile(file: string, value: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, file);
}

export function readRecord(key: string, dir = cacheDir()): TuneRecord | undefined {
  const rec = readCacheFile(join(dir, `${key}.json`)) as TuneRecord | undefined;
  return rec?.key === key && Array.isArray(rec.entries) ? rec : undefined;
}

export function writeRecord(rec: TuneRecord, dir = cacheDir()): void {
  writeCacheFile(join(dir, `${rec.key}.json`), rec);
}

/** The entry tuned at dims closest to `dims` (log distance), or the first when no dims are given. */
export function pickEntry(rec: TuneRecord, dims?: Readonly<Record<string, number>>): TunedEntry | undefined {
  if (!dims) return rec.entries[0];
  let best: TunedEntry | undefined;
  let bestD = Infinity;
  for (const e of rec.entries) {
    let d = 0;
    for (const [k, v] of Object.entries(dims)) d += Math.abs(Math.log2(v) - Math.log2(e.dims[k] ?? v));
    if (d < bestD) {
      bestD = d;
      best = e;
    }
  }
  return best;
}
