/**
 * NVRTC: CUDA C++ -> cubin or PTX in process, through the addon (native.ts), which dlopens libnvrtc on
 * first use (never linked, so nothing needs it to build or load). compileCuda (nvcc.ts) uses it with
 * `compiler: 'nvrtc'`, and with 'auto' (the CUDA runtime's choice) whenever it loads.
 *
 * Which library: $TESSERA_NVRTC=<file> first, else the path the caller passes (compileCuda passes
 * nvrtcLibraryPath()), then libnvrtc.so, .so.13, .so.12, .so.11 by the dynamic loader's search (so
 * LD_LIBRARY_PATH counts). $TESSERA_NVRTC=none turns NVRTC off: probes report it unavailable and
 * 'auto' uses nvcc.
 *
 * The probe is remembered per process (a library, once loaded, stays loaded).
 */
import { TesseraError } from '../../errors.js';
import { cudaAddonUnavailableReason, loadCudaAddon, type NvrtcCallError } from './native.js';

export interface NvrtcStatus {
  readonly available: boolean;
  /** Why not (the addon is not built, TESSERA_NVRTC=none, or every library tried and why it failed). */
  readonly reason?: string;
  /** nvrtcVersion as 'major.minor', e.g. '12.4'. */
  readonly version?: string;
  /** The library file that was loaded. */
  readonly path?: string;
}

export interface NvrtcOutput {
  /** When the options name a real arch (-arch=sm_XX). */
  readonly cubin?: Buffer;
  /** When they name a virtual arch (-arch=compute_XX) or none; without the trailing NUL. */
  readonly ptx?: Buffer;
  /** NVRTC's program log (warnings); '' when empty. */
  readonly log: string;
}

/** A failed NVRTC compile: E_BACKEND with NVRTC's error and program log, and the options used. */
export class NvrtcError extends TesseraError {
  constructor(
    message: string,
    /** nvrtcGetErrorString's text (NVRTC_ERROR_COMPILATION ...), when NVRTC itself failed. */
    readonly nvrtcError: string | undefined,
    /** The program log ('' when there is none). */
    readonly log: string,
    readonly options: readonly string[],
  ) {
    super('E_BACKEND', message);
    this.name = 'NvrtcError';
  }
}

const probes = new Map<string, NvrtcStatus>();
let loaded: NvrtcStatus | undefined;

/**
 * Loads NVRTC if it can (see the file comment) and says what it found. Never throws. Once a library
 * has loaded, every later call reports it, whatever path it names.
 */
export function nvrtcProbe(libraryPath?: string): NvrtcStatus {
  const env = process.env['TESSERA_NVRTC'];
  if (env === 'none') return { available: false, reason: 'NVRTC is turned off (TESSERA_NVRTC=none)' };
  if (loaded) return loaded;
  const path = env !== undefined && env !== '' ? env : (libraryPath ?? '');
  const known = probes.get(path);
  if (known) return known;
  let status: NvrtcStatus;
  const addon = loadCudaAddon();
  if (!addon) {
    status = { available: false, reason: cudaAddonUnavailableReason() ?? 'the CUDA addon did not load' };
  } else if (typeof addon.nvrtcProbe !== 'function') {
    status = { available: false, reason: 'the CUDA addon was built without NVRTC support (rebuild it: npm run build:cuda)' };
  } else {
    const p = addon.nvrtcProbe(path === '' ? undefined : path);
    status = p.available
      ? { available: true, version: p.version ?? 'unknown', ...(p.path !== undefined ? { path: p.path } : {}) }
      : { available: false, reason: p.reason ?? 'libnvrtc did not load' };
  }
  if (status.available) loaded = status;
  probes.set(path, status);
  return status;
}

/**
 * Compiles `source` with NVRTC. `name` is the program's file name in diagnostics (e.g. 'kernel.cu');
 * `options` are NVRTC options (-arch=sm_90 for a cubin, -arch=compute_80 for PTX, -std=c++17 ...).
 * Throws NvrtcError (E_BACKEND) with NVRTC's error text and the program log, or E_BACKEND when NVRTC
 * is not available.
 */
export function nvrtcCompile(source: string, name: string, options: readonly string[], libraryPath?: string): NvrtcOutput {
  const status = nvrtcProbe(libraryPath);
  if (!status.available) throw new TesseraError('E_BACKEND', `NVRTC is not available: ${status.reason}`);
  const addon = loadCudaAddon()!;
  try {
    const out = addon.nvrtcCompile(source, name, [...options]);
    return { ...(out.cubin ? { cubin: out.cubin } : {}), ...(out.ptx ? { ptx: out.ptx } : {}), log: out.log };
  } catch (e) {
    const err = e as NvrtcCallError;
    const log = typeof err.log === 'string' ? err.log : '';
    throw new NvrtcError(
      `NVRTC ${status.version} (${status.path ?? 'libnvrtc'}): ${err instanceof Error ? err.message : String(e)}\nNVRTC options: ${options.join(' ')}`,
      err.nvrtcError,
      log,
      options,
    );
  }
}
