/**
 * The CUDA compiler driver: CUDA C++ source -> cubin, fatbin or PTX, by running nvcc as a subprocess
 * or, when libnvrtc loads, by NVRTC in process (nvrtc.ts), with a content-hash cache on disk.
 *
 * Compiler (`compiler` option): 'nvcc' (the default) always runs nvcc; 'nvrtc' always uses NVRTC
 * (E_BACKEND when it does not load; E_ARG for 'fatbin', which NVRTC cannot make); 'auto' (what the
 * CUDA runtime uses) takes NVRTC when it loads and the output is a cubin or PTX, else nvcc. NVRTC gets
 * the same flags as nvcc (below), `-arch=sm_XY` for a cubin or `-arch=compute_XY` for PTX,
 * `--include-path` of the toolkit's include folder when one is found (for <cuda_fp16.h>), and
 * extraFlags as they are (so give flags both understand, e.g. -lineinfo, -DNAME=1).
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
 * NVCC_APPEND_FLAGS, and the full `nvcc --version` text (for NVRTC: the word nvrtc, its version and
 * every option, so the two compilers never share an entry); files live in `$TESSERA_CACHE_DIR/cuda` or
 * else `.tessera-cache/cuda/` at the repository root, each written to a temporary name and renamed,
 * so a failed or interrupted compile never leaves a partial entry. The cache is never evicted;
 * deleting the folder is always safe.
 *
 * A failed compile throws TesseraError('E_BACKEND') with nvcc's output and the exact command line,
 * whose source file is kept on disk to reproduce it. A failed NVRTC compile throws NvrtcError
 * (E_BACKEND) with NVRTC's error, its program log and the options used; NVRTC has no command line, so
 * the message gives the equivalent nvcc command, on the kept source, to reproduce it.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fail, TesseraError } from '../../errors.js';
import { NvrtcError, nvrtcCompile, nvrtcProbe, type NvrtcStatus } from './nvrtc.js';

export type CudaOutput = 'cubin' | 'ptx' | 'fatbin';

/** Which compiler compileCuda uses (see the file comment). */
export type CudaCompiler = 'auto' | 'nvcc' | 'nvrtc';

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
  /** 'nvcc' (default), 'nvrtc', or 'auto': NVRTC when it loads (and the output is not a fatbin), else nvcc. */
  readonly compiler?: CudaCompiler;
}

export interface CudaCompilePart {
  /** The arch of a cubin; for fatbin and ptx, every arch joined with ','. */
  readonly arch: string;
  readonly bytes: Buffer;
  /** The nvcc command line that produced (or would produce) this output; for NVRTC, the equivalent one. */
  readonly command: string;
  readonly cached: boolean;
  /** NVRTC only: the options it was given. */
  readonly nvrtcOptions?: readonly string[];
  /** NVRTC only: the program log (warnings) of a fresh compile ('' when none; absent when cached). */
  readonly log?: string;
}

export interface CudaCompileResult {
  /** The output; for a cubin over several archs, the first arch's (see parts). */
  readonly bytes: Buffer;
  /** The command line(s), one per line. */
  readonly command: string;
  /** True when every part came from the cache. */
  readonly cached: boolean;
  readonly parts: readonly CudaCompilePart[];
  /** The compiler that was used. */
  readonly compiler: 'nvcc' | 'nvrtc';
  /** Its version: nvcc's ('13.0.88') or NVRTC's ('12.4'). */
  readonly compilerVersion: string;
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
 * compileCuda hands it to nvrtcProbe (nvrtc.ts), which also tries the usual sonames.
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

let nvrtcFile: string | null | undefined;

/** NVRTC as compileCuda finds it: nvrtcProbe(nvrtcLibraryPath()), the path looked up once per process. */
export function cudaNvrtcStatus(): NvrtcStatus {
  if (nvrtcFile === undefined) nvrtcFile = nvrtcLibraryPath() ?? null;
  return nvrtcProbe(nvrtcFile ?? undefined);
}

/** The toolkit include folder for NVRTC (one with <cuda_fp16.h>), if any. */
function nvrtcIncludeDir(status: NvrtcStatus): string | undefined {
  const env = process.env;
  const dirs = [
    ...['CUDA_HOME', 'CUDA_PATH', 'CUDA_ROOT'].flatMap((v) => (env[v] ? [join(env[v]!, 'include')] : [])),
    ...(nvccPath() ? [join(dirname(nvccPath()!), '..', 'include')] : []),
    ...(status.path ? [join(dirname(status.path), '..', 'include')] : []),
    '/usr/local/cuda/include',
  ];
  return dirs.find((d) => existsSync(join(d, 'cuda_fp16.h')));
}

export type CudaCompilerChoice =
  | { readonly ok: true; readonly compiler: 'nvcc'; readonly version: string; readonly nvcc: string; readonly versionText: string }
  | { readonly ok: true; readonly compiler: 'nvrtc'; readonly version: string; readonly nvrtc: NvrtcStatus }
  | { readonly ok: false; readonly reason: string };

/** Which compiler compileCuda would use for `compiler` and `output`, or why none can be used. */
export function chooseCudaCompiler(compiler: CudaCompiler = 'nvcc', output: CudaOutput = 'cubin'): CudaCompilerChoice {
  const viaNvcc = (): CudaCompilerChoice | undefined => {
    const nvcc = nvccPath();
    const text = nvccVersionText();
    return nvcc !== undefined && text !== undefined ? { ok: true, compiler: 'nvcc', version: nvccVersion() ?? 'unknown', nvcc, versionText: text } : undefined;
  };
  const nvccMissing = 'nvcc not found or not working (looked at $TESSERA_NVCC, PATH, $CUDA_HOME/bin, /usr/local/cuda/bin)';
  if (compiler === 'nvcc') return viaNvcc() ?? { ok: false, reason: nvccMissing };
  if (compiler === 'nvrtc') {
    if (output === 'fatbin') return { ok: false, reason: "NVRTC cannot produce a fatbin (use compiler 'nvcc' or 'auto')" };
    const st = cudaNvrtcStatus();
    return st.available ? { ok: true, compiler: 'nvrtc', version: st.version ?? 'unknown', nvrtc: st } : { ok: false, reason: `NVRTC is not available: ${st.reason}` };
  }
  if (compiler !== 'auto') return { ok: false, reason: `compiler must be auto, nvcc or nvrtc, got '${String(compiler)}'` };
  const st = output === 'fatbin' ? undefined : cudaNvrtcStatus();
  if (st?.available) return { ok: true, compiler: 'nvrtc', version: st.version ?? 'unknown', nvrtc: st };
  return viaNvcc() ?? { ok: false, reason: `${nvccMissing}${st ? `, and NVRTC is not available: ${st.reason}` : ''}` };
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
export function cacheWrite(dir: string, file: string, bytes: Buffer): void {
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

/** The number of an arch: 90 for sm_90 and sm_90a. */
export function archNumber(a: string): number {
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

/** NVRTC's options for a job: its arch, Tessera's flags, the include folder, extraFlags. */
function nvrtcOptionsFor(output: CudaOutput, job: Job, extra: readonly string[], include: string | undefined): string[] {
  const arch = output === 'ptx' ? computeOf(job.arch) : job.arch;
  return [`-arch=${arch}`, ...NVCC_FLAGS, ...(include ? [`--include-path=${include}`] : []), ...extra];
}

function nvrtcCacheKey(source: string, job: Job, version: string, options: readonly string[]): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ format: CACHE_FORMAT, compiler: 'nvrtc', version, options, ext: job.ext }));
  h.update('\0');
  h.update(source);
  return h.digest('hex');
}

function runNvrtc(source: string, job: Job, options: readonly string[], output: CudaOutput): { bytes: Buffer; log: string } {
  let out;
  try {
    out = nvrtcCompile(source, 'kernel.cu', options);
  } catch (e) {
    if (!(e instanceof NvrtcError)) throw e;
    // NVRTC has no command line: keep the source and give the nvcc command that compiles it the same way.
    const dir = mkdtempSync(join(tmpdir(), 'tessera-nvrtc-'));
    const src = join(dir, 'kernel.cu');
    writeFileSync(src, source);
    const command = shellQuote([nvccPath() ?? 'nvcc', ...job.args, '-o', join(dir, `kernel.${job.ext}`), src]);
    throw new NvrtcError(
      `CUDA compile failed for ${job.arch}: ${e.detail}\nsource kept at ${src}\nNVRTC has no command line; reproduce with the equivalent nvcc command:\n  ${command}`,
      e.nvrtcError,
      e.log,
      e.options,
    );
  }
  const bytes = output === 'ptx' ? out.ptx : out.cubin;
  if (!bytes || bytes.length === 0) {
    throw new TesseraError('E_BACKEND', `NVRTC returned no ${output} for ${job.arch} (options: ${options.join(' ')})${out.log ? `\n${out.log}` : ''}`);
  }
  return { bytes, log: out.log };
}

/**
 * Compile CUDA C++ source with nvcc or NVRTC (see the file comment). E_BACKEND when the compiler is
 * missing or fails.
 */
export function compileCuda(source: string, opts: CompileCudaOptions): CudaCompileResult {
  const archs = opts.archs ?? DEFAULT_ARCHS;
  if (archs.length === 0) fail('E_ARG', 'compileCuda: archs is empty');
  for (const a of archs) if (!ARCH.test(a)) fail('E_ARG', `compileCuda: arch '${a}' is not of the form sm_XY (e.g. sm_80, sm_90a)`);
  if (!['cubin', 'ptx', 'fatbin'].includes(opts.output)) fail('E_ARG', `compileCuda: output must be cubin, ptx or fatbin, got '${String(opts.output)}'`);
  const compiler = opts.compiler ?? 'nvcc';
  if (!['auto', 'nvcc', 'nvrtc'].includes(compiler)) fail('E_ARG', `compileCuda: compiler must be auto, nvcc or nvrtc, got '${String(compiler)}'`);
  if (compiler === 'nvrtc' && opts.output === 'fatbin') fail('E_ARG', "compileCuda: NVRTC cannot produce a fatbin (use compiler 'nvcc' or 'auto')");
  const choice = chooseCudaCompiler(compiler, opts.output);
  if (!choice.ok) fail('E_BACKEND', choice.reason);
  const useCache = opts.cache !== false;
  const dir = opts.cacheDir ?? cudaCacheDir();
  const parts: CudaCompilePart[] = [];
  const jobs = jobsFor(opts.output, [...new Set(archs)], opts.extraFlags ?? []);
  if (choice.compiler === 'nvrtc') {
    const include = nvrtcIncludeDir(choice.nvrtc);
    const nvcc = nvccPath() ?? 'nvcc';
    for (const job of jobs) {
      const options = nvrtcOptionsFor(opts.output, job, opts.extraFlags ?? [], include);
      const file = join(dir, `${nvrtcCacheKey(source, job, choice.version, options)}.${job.ext}`);
      const command = shellQuote([nvcc, ...job.args, '-o', file, '<source>.cu']);
      const hit = useCache && existsSync(file) ? cacheRead(file) : undefined;
      if (hit) {
        parts.push({ arch: job.arch, bytes: hit, command, cached: true, nvrtcOptions: options });
        continue;
      }
      const built = runNvrtc(source, job, options, opts.output);
      if (useCache) cacheWrite(dir, file, built.bytes);
      parts.push({ arch: job.arch, bytes: built.bytes, command, cached: false, nvrtcOptions: options, log: built.log });
    }
    return { bytes: parts[0]!.bytes, command: parts.map((p) => p.command).join('\n'), cached: parts.every((p) => p.cached), parts, compiler: 'nvrtc', compilerVersion: choice.version };
  }
  const { nvcc, versionText: version } = choice;
  for (const job of jobs) {
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
    compiler: 'nvcc',
    compilerVersion: choice.version,
  };
}
