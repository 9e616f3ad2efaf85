/**
 * The CUDA compiler driver: CUDA C++ source -> cubin, fatbin or PTX, by running nvcc as a subprocess,
 * with a content-hash cache on disk.
 *
 * Flags: `-std=c++17` and IEEE float semantics spelled out (`-ftz=false -prec-div=true
 * -prec-sqrt=true`, nvcc's defaults); never `--use_fast_math`, which would flush denormals and use
 * approximate division, sqrt, exp and log, so kernels would no longer match the reference. nvcc's
 * default `-fmad=true` stays (contracting a*b+c into one correctly rounded FMA, as every GPU
 * compiler does). Device code is optimized by ptxas at -O3 by default.
 *
 * Outputs:
 * - 'cubin': machine code for one arch; given several archs, nvcc runs once per arch and `parts`
 *   holds each (`bytes` is the first arch's).
 * - 'fatbin': one file with machine code for every arch (`-gencode arch=compute_XX,code=sm_XX` each)
 *   plus the PTX of the highest, which the driver JIT-compiles on newer GPUs.
 * - 'ptx': PTX for the lowest arch only (PTX is JIT-compiled forward to any newer GPU).
 *
 * Cache: key = sha256 of the source, output kind, arch, every flag, NVCC_PREPEND_FLAGS /
 * NVCC_APPEND_FLAGS, and the full `nvcc --version` text; files live in `$TESSERA_CACHE_DIR/cuda` or
 * else `.tessera-cache/cuda/` at the repository root, each written to a temporary name and renamed,
 * so a failed or interrupted compile never leaves a partial entry. The cache is never evicted;
 * deleting the folder is always safe.
 *
 * A failed compile throws TesseraError('E_BACKEND') with nvcc's output and the exact command line,
 * whose source file is kept on disk to reproduce it.
 *
 * NVRTC: nvrtcLibraryPath() only detects libnvrtc.so*; compiling through it is not implemented and
 * nvcc is always used.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fail, TesseraError } from '../../errors.js';

export type CudaOutput = 'cubin' | 'ptx' | 'fatbin';

export interface CompileCudaOptions {
  /** Target GPUs as `sm_XY` (optionally with a suffix, `sm_90a`). Default ['sm_80', 'sm_90']. */
  readonly archs?: readonly string[];
  readonly output: CudaOutput;
  /** Passed to nvcc after Tessera's own flags (part of the cache key). */
  readonly extraFlags?: readonly string[];
  /** Overrides the cache folder (default `$TESSERA_CACHE_DIR/cuda` or `<repo>/.tessera-cache/cuda`). */
  readonly cacheDir?: string;
  /** false: neither read nor write the cache. */
  readonly cache?: boolean;
}

export interface CudaCompilePart {
  /** The arch of a cubin; for fatbin and ptx, every arch joined with ','. */
  readonly arch: string;
  readonly bytes: Buffer;
  /** The nvcc command line that produced (or would produce) this output. */
  readonly command: string;
  readonly cached: boolean;
}

export interface CudaCompileResult {
  /** The output; for a cubin over several archs, the first arch's (see parts). */
  readonly bytes: Buffer;
  /** The command line(s), one per line. */
  readonly command: string;
  /** True when every part came from the cache. */
  readonly cached: boolean;
  readonly parts: readonly CudaCompilePart[];
}

export const DEFAULT_ARCHS: readonly string[] = ['sm_80', 'sm_90'];

/** Tessera's fixed nvcc flags (see the file comment). */
export const NVCC_FLAGS: readonly string[] = ['-std=c++17', '-ftz=false', '-prec-div=true', '-prec-sqrt=true'];

const CACHE_FORMAT = 1;
const NVCC_TIMEOUT_MS = 300_000;

// -------------------------------------------------------------------------------------------------
// Locating nvcc

function isExecutable(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

let nvccFile: string | null | undefined;

/** The nvcc to run: $TESSERA_NVCC, else the first on PATH, else under $CUDA_HOME / $CUDA_PATH / /usr/local/cuda. */
export function nvccPath(): string | undefined {
  if (nvccFile === undefined) {
    const env = process.env;
    const candidates = [
      ...(env['TESSERA_NVCC'] ? [env['TESSERA_NVCC']] : []),
      ...(env['PATH'] ?? '').split(delimiter).filter((d) => d !== '').map((d) => join(d, 'nvcc')),
      ...['CUDA_HOME', 'CUDA_PATH', 'CUDA_ROOT'].flatMap((v) => (env[v] ? [join(env[v]!, 'bin', 'nvcc')] : [])),
      '/usr/local/cuda/bin/nvcc',
    ];
    nvccFile = candidates.find(isExecutable) ?? null;
  }
  return nvccFile ?? undefined;
}

let versionText: string | null | undefined;

/** The full `nvcc --version` output, or undefined when there is no working nvcc. */
export function nvccVersionText(): string | undefined {
  if (versionText === undefined) {
    versionText = null;
    const nvcc = nvccPath();
    if (nvcc) {
      const r = spawnSync(nvcc, ['--version'], { encoding: 'utf8', timeout: 60_000 });
      if (r.status === 0 && typeof r.stdout === 'string' && r.stdout.trim() !== '') versionText = r.stdout.trim();
    }
  }
  return versionText ?? undefined;
}

/** nvcc's version, e.g. '13.0.88' (undefined without nvcc). */
export function nvccVersion(): string | undefined {
  const text = nvccVersionText();
  if (text === undefined) return undefined;
  return /\bV(\d+(?:\.\d+)+)/.exec(text)?.[1] ?? /release (\d+(?:\.\d+)+)/.exec(text)?.[1] ?? text.split('\n').pop();
}

export function nvccAvailable(): boolean {
  return nvccVersionText() !== undefined;
}

/**
 * Where libnvrtc.so* is, if anywhere (LD_LIBRARY_PATH, the toolkit's lib folders, the system's).
 * Detection only: Tessera compiles with nvcc either way.
 */
export function nvrtcLibraryPath(): string | undefined {
  const env = process.env;
  const dirs = [
    ...(env['LD_LIBRARY_PATH'] ?? '').split(delimiter).filter((d) => d !== ''),
    ...['CUDA_HOME', 'CUDA_PATH', 'CUDA_ROOT'].flatMap((v) => (env[v] ? [join(env[v]!, 'lib64'), join(env[v]!, 'lib')] : [])),
    ...(nvccPath() ? [join(dirname(nvccPath()!), '..', 'lib64')] : []),
    '/usr/local/cuda/lib64',
    '/usr/local/cuda/targets/x86_64-linux/lib',
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
  ];
  for (const d of dirs) {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      continue;
    }
    const hit = names.filter((n) => /^libnvrtc\.so(\.\d+)*$/.test(n)).sort()[0];
    if (hit) return join(d, hit);
  }
  return undefined;
}

// -------------------------------------------------------------------------------------------------
// Cache

/** `$TESSERA_CACHE_DIR/cuda`, else `.tessera-cache/cuda` at the repository root. */
export function cudaCacheDir(): string {
  const env = process.env['TESSERA_CACHE_DIR'];
  if (env) return join(env, 'cuda');
  return fileURLToPath(new URL('../../../.tessera-cache/cuda/', import.meta.url));
}

function cacheRead(file: string): Buffer | undefined {
  try {
    const b = readFileSync(file);
    return b.length > 0 ? b : undefined;
  } catch {
    return undefined;
  }
}

/** Write by temporary file + rename: readers see the whole entry or none. Failures are ignored. */
function cacheWrite(dir: string, file: string, bytes: Buffer): void {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(tmp, bytes);
    renameSync(tmp, file);
  } catch {
    rmSync(tmp, { force: true });
  }
}

// -------------------------------------------------------------------------------------------------
// Compiling

const ARCH = /^sm_(\d{2,3})([a-z]?)$/;

function archNumber(a: string): number {
  return Number(ARCH.exec(a)![1]);
}

function computeOf(a: string): string {
  return a.replace(/^sm_/, 'compute_');
}

/** POSIX shell quoting, so the command line in an error can be pasted into a shell. */
export function shellQuote(args: readonly string[]): string {
  return args.map((a) => (/^[A-Za-z0-9_\-+=.,/:@%]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

interface Job {
  readonly arch: string;
  /** nvcc arguments before `-o <out> <src>`. */
  readonly args: readonly string[];
  readonly ext: string;
}

function jobsFor(output: CudaOutput, archs: readonly string[], extra: readonly string[]): Job[] {
  const sorted = [...archs].sort((a, b) => archNumber(a) - archNumber(b) || a.localeCompare(b));
  switch (output) {
    case 'cubin':
      return archs.map((a) => ({ arch: a, ext: `${a}.cubin`, args: ['-cubin', ...NVCC_FLAGS, '-gencode', `arch=${computeOf(a)},code=${a}`, ...extra] }));
    case 'fatbin': {
      const hi = sorted[sorted.length - 1]!;
      const gencode = [...sorted.flatMap((a) => ['-gencode', `arch=${computeOf(a)},code=${a}`]), '-gencode', `arch=${computeOf(hi)},code=${computeOf(hi)}`];
      return [{ arch: sorted.join(','), ext: 'fatbin', args: ['-fatbin', ...NVCC_FLAGS, ...gencode, ...extra] }];
    }
    case 'ptx': {
      const lo = sorted[0]!;
      return [{ arch: lo, ext: `${computeOf(lo)}.ptx`, args: ['-ptx', ...NVCC_FLAGS, `-arch=${computeOf(lo)}`, ...extra] }];
    }
  }
}

function cacheKey(source: string, job: Job, version: string): string {
  const h = createHash('sha256');
  h.update(
    JSON.stringify({
      format: CACHE_FORMAT,
      args: job.args,
      ext: job.ext,
      prepend: process.env['NVCC_PREPEND_FLAGS'] ?? '',
      append: process.env['NVCC_APPEND_FLAGS'] ?? '',
      version,
    }),
  );
  h.update('\0');
  h.update(source);
  return h.digest('hex');
}

function runNvcc(nvcc: string, source: string, job: Job): { bytes: Buffer; command: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-nvcc-'));
  const src = join(dir, 'kernel.cu');
  const out = join(dir, `kernel.${job.ext}`);
  writeFileSync(src, source);
  const argv = [...job.args, '-o', out, src];
  const command = shellQuote([nvcc, ...argv]);
  const r = spawnSync(nvcc, argv, { encoding: 'utf8', timeout: NVCC_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 });
  if (r.error || r.status !== 0) {
    const why = r.error
      ? `nvcc could not run: ${r.error.message}`
      : r.signal
        ? `nvcc was killed by ${r.signal}`
        : `nvcc exited with status ${r.status}`;
    const output = `${r.stderr ?? ''}${r.stdout ?? ''}`.trim();
    // The temporary folder stays, so the command below reproduces the failure.
    throw new TesseraError(
      'E_BACKEND',
      `CUDA compile failed for ${job.arch}: ${why}${output ? `\n${output}` : ''}\nsource kept at ${src}\nreproduce with:\n  ${command}`,
    );
  }
  let bytes: Buffer;
  try {
    bytes = readFileSync(out);
  } catch (e) {
    throw new TesseraError('E_BACKEND', `nvcc succeeded but wrote no ${out} (${e instanceof Error ? e.message : String(e)})\nsource kept at ${src}\nreproduce with:\n  ${command}`);
  }
  rmSync(dir, { recursive: true, force: true });
  return { bytes, command };
}

/** Compile CUDA C++ source with nvcc (see the file comment). E_BACKEND when nvcc is missing or fails. */
export function compileCuda(source: string, opts: CompileCudaOptions): CudaCompileResult {
  const archs = opts.archs ?? DEFAULT_ARCHS;
  if (archs.length === 0) fail('E_ARG', 'compileCuda: archs is empty');
  for (const a of archs) if (!ARCH.test(a)) fail('E_ARG', `compileCuda: arch '${a}' is not of the form sm_XY (e.g. sm_80, sm_90a)`);
  if (!['cubin', 'ptx', 'fatbin'].includes(opts.output)) fail('E_ARG', `compileCuda: output must be cubin, ptx or fatbin, got '${String(opts.output)}'`);
  const nvcc = nvccPath();
  const version = nvccVersionText();
  if (nvcc === undefined || version === undefined) {
    fail('E_BACKEND', `nvcc not found or not working (looked at $TESSERA_NVCC, PATH, $CUDA_HOME/bin, /usr/local/cuda/bin)`);
  }
  const useCache = opts.cache !== false;
  const dir = opts.cacheDir ?? cudaCacheDir();
  const parts: CudaCompilePart[] = [];
  for (const job of jobsFor(opts.output, [...new Set(archs)], opts.extraFlags ?? [])) {
    const key = cacheKey(source, job, version);
    const file = join(dir, `${key}.${job.ext}`);
    const command = shellQuote([nvcc, ...job.args, '-o', file, '<source>.cu']);
    const hit = useCache && existsSync(file) ? cacheRead(file) : undefined;
    if (hit) {
      parts.push({ arch: job.arch, bytes: hit, command, cached: true });
      continue;
    }
    const built = runNvcc(nvcc, source, job);
    if (useCache) cacheWrite(dir, file, built.bytes);
    parts.push({ arch: job.arch, bytes: built.bytes, command: built.command, cached: false });
  }
  return {
    bytes: parts[0]!.bytes,
    command: parts.map((p) => p.command).join('\n'),
    cached: parts.every((p) => p.cached),
    parts,
  };
}
