/**
 * A CUDA driver on the CPU, for running the CUDA C++ Tessera prints where there is no GPU: the
 * CudaAddon contract (native.ts) implemented in TypeScript, under the real CudaRuntime (runtime.ts,
 * with `loadSource`), so launches take the runtime's own path (validation, grid folding, f16/bf16
 * conversion, the allocation pool) and only the driver is replaced.
 *
 * - Memory is host memory: an allocation is an ArrayBuffer behind a fake 256-byte-aligned address
 *   (in the kernel's process, each buffer is 16-byte aligned and ends at an inaccessible page).
 * - A module is the kernel's CUDA source; cuModuleGetFunction compiles it with the host's g++ against
 *   emulator/tessera_cuda_emu.h (CUDA's device built-ins: threads as fibers, __syncthreads and warp
 *   shuffles as fiber barriers, WMMA on whole tiles; see the header) and CUDA's own headers for
 *   half, bf16 and fp8, into an executable cached by content under `.tessera-cache/cuda-emu` (least recently used
 *   executables pruned past 512 MiB).
 * - A launch writes the buffers its parameters point into to a file, runs the executable, and reads
 *   them back: launches are synchronous. A deadlock (threads waiting at different barriers), an
 *   access past the end of a buffer (each ends at an inaccessible page) or a crash throws CUDA's
 *   launch errors with the emulator's explanation. Shared memory reads as NaN until written.
 *
 * What it checks: the printed CUDA's syntax and types under a C++ compiler, and its semantics
 * (indexing, integer and float conversions, half/bf16/fp8 rounding, shared memory, barriers,
 * shuffles, tensor-core tile arithmetic) against the reference. What it cannot: timing, the
 * hardware's memory model and races between blocks (blocks run one after another), the register
 * layout of WMMA fragments, and sm_80-only paths (cp.async), which the host build leaves out.
 */
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CudaAddon, CudaDeviceInfo, CudaProbe, CuHandle, CuParam } from './native.js';
import { cacheWrite, nvccPath } from './nvcc.js';
import { CudaRuntime, type CudaRuntimeOptions } from './runtime.js';

const HEADER_DIR = fileURLToPath(new URL('./emulator/', import.meta.url));
const HEADER = 'tessera_cuda_emu.h';
/** g++ flags for the header and every kernel; $TESSERA_CUDA_EMU_CXXFLAGS adds more (e.g. `-fsanitize=undefined`). */
const CXX_FLAGS = ['-std=c++17', '-O1', '-w', ...(process.env['TESSERA_CUDA_EMU_CXXFLAGS'] ?? '').split(/\s+/).filter(Boolean)];
/** Longest a launch may run before it is reported as hung. */
const LAUNCH_TIMEOUT_MS = 300_000;

/** The emulated device: an sm_90 part with CUDA's usual limits, so every schedule (WMMA, bf16) runs. */
export const EMULATED_DEVICE: CudaDeviceInfo = {
  index: 0,
  name: 'Tessera CUDA emulator (CPU)',
  computeCapability: [9, 0],
  totalMem: 2 ** 31,
  smCount: 1,
  maxThreadsPerBlock: 1024,
  maxSharedMemPerBlock: 48 * 1024,
  maxSharedMemPerBlockOptin: 48 * 1024,
  maxBlockDimX: 1024,
  maxGridDimX: 2 ** 31 - 1,
  maxGridDimY: 65535,
  warpSize: 32,
};

class DriverError extends Error {
  constructor(
    readonly cudaError: string,
    text: string,
  ) {
    super(`${cudaError}: ${text}`);
  }
}

// -------------------------------------------------------------------------------------------------
// The toolchain: g++ and CUDA's headers

let toolchain: { cxx: string; include: string; version: string } | { reason: string } | undefined;

function findCudaInclude(): string | undefined {
  const roots = [process.env['CUDA_HOME'], process.env['CUDA_PATH']].filter((r): r is string => Boolean(r)).map((r) => join(r, 'include'));
  // nvcc may be a wrapper script: ask it where its toolkit is
  const nvcc = nvccPath();
  if (nvcc) {
    const r = spawnSync(nvcc, ['--dryrun', '--version'], { encoding: 'utf8' });
    const top = /#\$ TOP=(\S+)/.exec(`${r.stdout}${r.stderr}`)?.[1];
    if (top) roots.push(join(top, '..', 'include'));
    roots.push(join(dirname(dirname(nvcc)), 'include'));
  }
  roots.push('/usr/local/cuda/include', '/usr/include');
  return roots.find((d) => existsSync(join(d, 'cuda_fp16.h')) && existsSync(join(d, 'cuda_fp8.h')));
}

function findToolchain(): { cxx: string; include: string; version: string } | { reason: string } {
  if (toolchain) return toolchain;
  const cxx = process.env['CXX'] ?? 'g++';
  const v = spawnSync(cxx, ['-dumpfullversion'], { encoding: 'utf8' });
  if (v.status !== 0) return (toolchain = { reason: `no C++ compiler (${cxx}: ${v.error?.message ?? v.stderr.trim()})` });
  const include = findCudaInclude();
  if (!include) return (toolchain = { reason: "CUDA's headers (cuda_fp16.h, cuda_fp8.h) were not found: set CUDA_HOME or install the CUDA toolkit" });
  return (toolchain = { cxx, include, version: `${cxx} ${v.stdout.trim()}` });
}

/** Why the emulator cannot run here (no g++, no CUDA headers), or undefined when it can. */
export function cudaEmulatorUnavailableReason(): string | undefined {
  const t = findToolchain();
  return 'reason' in t ? t.reason : undefined;
}

/** `$TESSERA_CACHE_DIR/cuda-emu`, else `.tessera-cache/cuda-emu` at the repository root. */
export function cudaEmulatorCacheDir(): string {
  const env = process.env['TESSERA_CACHE_DIR'];
  return env ? join(env, 'cuda-emu') : fileURLToPath(new URL('../../../.tessera-cache/cuda-emu/', import.meta.url));
}

/** The header and its precompiled form, in a folder keyed by the header, the compiler and its flags. */
let headerKey: { header: Buffer; key: string } | undefined;

function precompiledHeader(t: { cxx: string; include: string; version: string }): string {
  if (!headerKey) {
    const header = readFileSync(join(HEADER_DIR, HEADER));
    headerKey = { header, key: createHash('sha256').update(header).update(t.version).update(t.include).update(CXX_FLAGS.join(' ')).digest('hex').slice(0, 16) };
  }
  const { header, key } = headerKey;
  const dir = join(cudaEmulatorCacheDir(), `pch-${key}`);
  if (existsSync(join(dir, `${HEADER}.gch`))) return dir;
  cacheWrite(dir, join(dir, HEADER), header);
  const tmp = join(dir, `${HEADER}.${process.pid}.${randomBytes(6).toString('hex')}.gch`);
  const r = spawnSync(t.cxx, [...CXX_FLAGS, `-I${t.include}`, '-x', 'c++-header', join(dir, HEADER), '-o', tmp], { encoding: 'utf8' });
  // without a precompiled header each kernel compiles the header itself: slower, same result
  if (r.status === 0) renameSync(tmp, join(dir, `${HEADER}.gch`));
  else rmSync(tmp, { force: true });
  return dir;
}

/** Bytes of kernel executables the cache keeps (pruneEmulatorCache), about 8000 kernels. */
const CACHE_MAX_BYTES = 512 * 2 ** 20;
let pruned = false;

function touch(file: string): void {
  try {
    const now = new Date();
    utimesSync(file, now, now);
  } catch {
    // another process pruned it: it is rebuilt on its next use
  }
}

/**
 * Keeps the cache's kernel executables under `maxBytes` (half of it after a prune), removing the
 * least recently used first: a cache hit refreshes an executable's time. Runs once per process,
 * before its first compile; the precompiled headers stay. Returns how many files it removed.
 */
export function pruneEmulatorCache(dir: string, maxBytes: number): number {
  let files: { path: string; bytes: number; time: number }[];
  try {
    files = readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isFile() && !e.name.startsWith('pch-'))
      .map((e) => {
        const st = statSync(join(dir, e.name));
        return { path: join(dir, e.name), bytes: st.size, time: st.mtimeMs };
      });
  } catch {
    return 0;
  }
  let total = files.reduce((n, f) => n + f.bytes, 0);
  if (total <= maxBytes) return 0;
  let removed = 0;
  for (const f of files.sort((a, b) => a.time - b.time)) {
    if (total <= maxBytes / 2) break;
    rmSync(f.path, { force: true });
    total -= f.bytes;
    removed++;
  }
  return removed;
}

// -------------------------------------------------------------------------------------------------
// Kernels

interface EntryParam {
  readonly name: string;
  readonly pointer: boolean;
  /** The C++ type of the parameter, e.g. `const float*` or `int`. */
  readonly type: string;
}

/** The parameters of `extern "C" __global__ ... name(...)` in `source`, or undefined if there is no such kernel. */
export function entryParams(source: string, name: string): EntryParam[] | undefined {
  const head = new RegExp(`extern "C" __global__ void (?:__launch_bounds__\\([^)]*\\) )?${name}\\(([^)]*)\\)`).exec(source);
  if (!head) return undefined;
  const list = head[1]!.trim();
  if (list === '') return [];
  return list.split(',').map((p) => {
    const text = p.trim();
    const pointer = text.includes('*');
    const name = /(\w+)$/.exec(text)?.[1] ?? '';
    const type = pointer ? text.slice(0, text.lastIndexOf('*') + 1).trim() : text.slice(0, text.length - name.length).trim();
    return { name, pointer, type };
  });
}

/** The translation unit: the header, the kernel's source, a trampoline from the launch file's parameters, main. */
function emulatorUnit(source: string, name: string, params: readonly EntryParam[]): string {
  let p = 0;
  let i = 0;
  const args = params.map((x) => (x.pointer ? `(${x.type})ptrs[${p++}]` : `(${x.type})ints[${i++}]`));
  return [
    `#include "${HEADER}"`,
    source,
    `static void tsr_emu_entry(void* const* ptrs, const int* ints) { (void)ptrs; (void)ints; ${name}(${args.join(', ')}); }`,
    'int main(int argc, char** argv) { return tsr_emu_main(argc, argv, tsr_emu_entry); }',
    '',
  ].join('\n');
}

/** The executable that runs kernel `name` of `source`, compiled once per content. */
function compileKernel(source: string, name: string): { exe: string; params: EntryParam[] } {
  const t = findToolchain();
  if ('reason' in t) throw new DriverError('CUDA_ERROR_NOT_INITIALIZED', t.reason);
  const params = entryParams(source, name);
  if (!params) throw new DriverError('CUDA_ERROR_NOT_FOUND', `the module has no kernel named '${name}'`);
  const pch = precompiledHeader(t);
  const unit = emulatorUnit(source, name, params);
  const key = createHash('sha256').update(pch).update('\0').update(unit).digest('hex').slice(0, 24);
  const dir = cudaEmulatorCacheDir();
  const exe = join(dir, `${name}-${key}`);
  if (existsSync(exe)) {
    // (its time is its last use, for pruneEmulatorCache)
    touch(exe);
    return { exe, params };
  }
  if (!pruned) {
    pruned = true;
    pruneEmulatorCache(dir, CACHE_MAX_BYTES);
  }
  const src = join(dir, `${name}-${key}.${process.pid}.cpp`);
  const tmp = `${exe}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    writeFileSync(src, unit);
    const r = spawnSync(t.cxx, [...CXX_FLAGS, `-I${pch}`, `-I${t.include}`, src, '-s', '-o', tmp], { encoding: 'utf8' });
    if (r.status !== 0) throw new DriverError('CUDA_ERROR_INVALID_PTX', `the emulator's ${t.version} rejected kernel '${name}':\n${(r.stderr || r.error?.message || '').trim()}`);
    renameSync(tmp, exe);
  } finally {
    rmSync(src, { force: true });
    rmSync(tmp, { force: true });
  }
  return { exe, params };
}

// -------------------------------------------------------------------------------------------------
// The driver

interface Allocation {
  readonly address: bigint;
  readonly bytes: Uint8Array;
}

function bytesOf(v: ArrayBufferView | ArrayBuffer): Uint8Array {
  return v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** CudaAddon on the CPU (see the file's comment). */
export class CudaEmulatorAddon implements CudaAddon {
  readonly builtWith: string;
  readonly nvrtcBuiltWith = 'none (the emulator compiles with the host C++ compiler)';
  private next = 0x7f0000000000n;
  private readonly allocations = new Map<bigint, Allocation>();
  private readonly modules = new Map<bigint, string>();
  private readonly functions = new Map<bigint, { name: string; source: string; exe: string; params: EntryParam[] }>();
  private readonly events = new Map<bigint, number>();
  private handles = 1n;
  /** Launches run so far (tests read it). */
  launches = 0;

  constructor() {
    const t = findToolchain();
    this.builtWith = 'reason' in t ? 'nothing (the emulator cannot run here)' : `${t.version} as host code, one block at a time`;
  }

  probe(): CudaProbe {
    const why = cudaEmulatorUnavailableReason();
    return why ? { available: false, reason: why, devices: [] } : { available: true, devices: [EMULATED_DEVICE] };
  }

  ctxCreate(device: number): CuHandle {
    if (device !== 0) throw new DriverError('CUDA_ERROR_INVALID_DEVICE', `the emulator has one device, 0, not ${device}`);
    return this.handles++;
  }
  ctxSetCurrent(): void {}
  ctxRelease(): void {}
  ctxSynchronize(): void {}

  memAlloc(bytes: number): CuHandle {
    const address = this.next;
    this.next += (BigInt(bytes) + 511n) & ~255n;
    this.allocations.set(address, { address, bytes: new Uint8Array(bytes) });
    return address;
  }

  memFree(ptr: CuHandle): void {
    if (!this.allocations.delete(ptr)) throw new DriverError('CUDA_ERROR_INVALID_VALUE', 'cuMemFree of an address that is not an allocation');
  }

  /** The allocation holding `ptr` and the offset into it. */
  private find(ptr: bigint): { a: Allocation; offset: number } {
    const a = this.allocations.get(ptr);
    if (a) return { a, offset: 0 };
    for (const x of this.allocations.values()) if (ptr > x.address && ptr < x.address + BigInt(x.bytes.length)) return { a: x, offset: Number(ptr - x.address) };
    throw new DriverError('CUDA_ERROR_INVALID_VALUE', `address 0x${ptr.toString(16)} is not in any allocation`);
  }

  memsetD8(ptr: CuHandle, value: number, bytes: number): void {
    const { a, offset } = this.find(ptr);
    a.bytes.fill(value, offset, offset + bytes);
  }

  memcpyHtoD(dst: CuHandle, src: ArrayBufferView | ArrayBuffer): void {
    const { a, offset } = this.find(dst);
    a.bytes.set(bytesOf(src), offset);
  }

  memcpyDtoH(dst: ArrayBufferView | ArrayBuffer, src: CuHandle): void {
    const { a, offset } = this.find(src);
    const out = bytesOf(dst);
    out.set(a.bytes.subarray(offset, offset + out.length));
  }

  moduleLoadData(image: ArrayBufferView | ArrayBuffer): CuHandle {
    const h = this.handles++;
    this.modules.set(h, Buffer.from(bytesOf(image)).toString('utf8'));
    return h;
  }

  moduleUnload(mod: CuHandle): void {
    this.modules.delete(mod);
  }

  moduleGetFunction(mod: CuHandle, name: string): CuHandle {
    const source = this.modules.get(mod);
    if (source === undefined) throw new DriverError('CUDA_ERROR_INVALID_HANDLE', 'not a loaded module');
    const h = this.handles++;
    this.functions.set(h, { name, source, ...compileKernel(source, name) });
    return h;
  }

  launchKernel(fn: CuHandle, grid: readonly number[], block: readonly number[], sharedBytes: number, params: readonly CuParam[]): void {
    const f = this.functions.get(fn);
    if (!f) throw new DriverError('CUDA_ERROR_INVALID_HANDLE', 'not a kernel');
    if (sharedBytes !== 0) throw new DriverError('CUDA_ERROR_INVALID_VALUE', 'the emulator has no dynamic shared memory');
    if (params.length !== f.params.length) throw new DriverError('CUDA_ERROR_INVALID_VALUE', `kernel '${f.name}' takes ${f.params.length} parameters, got ${params.length}`);
    const used: Allocation[] = [];
    const words: Buffer[] = [];
    for (const [i, p] of params.entries()) {
      const w = Buffer.alloc(16);
      if (f.params[i]!.pointer) {
        if (typeof p !== 'bigint') throw new DriverError('CUDA_ERROR_INVALID_VALUE', `kernel '${f.name}': parameter ${i} is a pointer, got ${typeof p}`);
        const { a, offset } = this.find(p);
        if (!used.includes(a)) used.push(a);
        w.writeUInt32LE(0, 0);
        w.writeUInt32LE(used.indexOf(a), 4);
        w.writeBigUInt64LE(BigInt(offset), 8);
      } else {
        w.writeUInt32LE(1, 0);
        w.writeInt32LE(Number(p), 4);
      }
      words.push(w);
    }
    const dims = [...grid, 1, 1, 1].slice(0, 3).concat([...block, 1, 1, 1].slice(0, 3));
    const head = Buffer.alloc(32);
    dims.forEach((d, i) => head.writeUInt32LE(d, 4 * i));
    head.writeUInt32LE(used.length, 24);
    head.writeUInt32LE(params.length, 28);
    const parts: Buffer[] = [head];
    for (const a of used) {
      const n = Buffer.alloc(8);
      n.writeBigUInt64LE(BigInt(a.bytes.length));
      parts.push(n, Buffer.from(a.bytes.buffer, a.bytes.byteOffset, a.bytes.byteLength));
    }
    parts.push(...words);
    const io = join(tmpdir(), `tessera-cuda-emu-${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      writeFileSync(`${io}.in`, Buffer.concat(parts));
      const run = () => spawnSync(f.exe, [`${io}.in`, `${io}.out`], { encoding: 'utf8', timeout: LAUNCH_TIMEOUT_MS });
      let r = run();
      // another process pruned the executable from the cache: build it again
      if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
        compileKernel(f.source, f.name);
        r = run();
      }
      if (r.error && /ETIMEDOUT/.test(r.error.message)) throw new DriverError('CUDA_ERROR_LAUNCH_TIMEOUT', `kernel '${f.name}' ran for more than ${LAUNCH_TIMEOUT_MS / 1000} s in the emulator`);
      if (r.signal) throw new DriverError('CUDA_ERROR_ILLEGAL_ADDRESS', `kernel '${f.name}' crashed in the emulator (${r.signal}): an access outside its buffers?`);
      // (4: the emulator's fault handler, which says where)
      if (r.status === 4) throw new DriverError('CUDA_ERROR_ILLEGAL_ADDRESS', `kernel '${f.name}' in the emulator: ${r.stderr.trim().replace(/parameter (\d+)/, (_, i: string) => `'${f.params[Number(i)]?.name ?? i}'`)}`);
      if (r.status !== 0) throw new DriverError('CUDA_ERROR_LAUNCH_FAILED', `kernel '${f.name}' in the emulator: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`);
      const out = readFileSync(`${io}.out`);
      let at = 0;
      for (const a of used) {
        a.bytes.set(out.subarray(at, at + a.bytes.length));
        at += a.bytes.length;
      }
      this.launches++;
    } finally {
      rmSync(`${io}.in`, { force: true });
      rmSync(`${io}.out`, { force: true });
    }
  }

  eventCreate(): CuHandle {
    const h = this.handles++;
    this.events.set(h, 0);
    return h;
  }
  eventRecord(ev: CuHandle): void {
    this.events.set(ev, performance.now());
  }
  eventSynchronize(): void {}
  eventElapsedTime(start: CuHandle, end: CuHandle): number {
    return (this.events.get(end) ?? 0) - (this.events.get(start) ?? 0);
  }
  eventDestroy(ev: CuHandle): void {
    this.events.delete(ev);
  }

  nvrtcProbe(): { available: false; reason: string } {
    return { available: false, reason: 'the emulator compiles CUDA source with the host C++ compiler, not NVRTC' };
  }
  nvrtcCompile(): never {
    throw new DriverError('CUDA_ERROR_NOT_SUPPORTED', 'the emulator has no NVRTC');
  }
}

/** The CUDA runtime over the emulator: its times are the host's wall clock, never a GPU's. */
class CudaEmulatorRuntime extends CudaRuntime {
  override async time(launches: () => void, repeats: number): Promise<{ medianMs: number; source: 'device' | 'wall' }> {
    return { ...(await super.time(launches, repeats)), source: 'wall' };
  }
}

/**
 * A CudaRuntime whose driver is the emulator (kind 'cuda', an sm_90 device), or undefined when the
 * host cannot build its kernels (cudaEmulatorUnavailableReason() says why). `addon`: the driver to
 * use, for a caller that makes driver calls itself (events).
 */
export function createCudaEmulatorRuntime(opts: Omit<CudaRuntimeOptions, 'loadSource' | 'device'> & { readonly addon?: CudaEmulatorAddon } = {}): CudaRuntime | undefined {
  const { addon = new CudaEmulatorAddon(), ...rest } = opts;
  const probe = addon.probe();
  if (!probe.available) return undefined;
  return new CudaEmulatorRuntime(addon, probe, EMULATED_DEVICE, { ...rest, loadSource: true });
}

