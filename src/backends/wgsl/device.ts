/**
 * Finding a WebGPU device, one code path for Node and the browser: `navigator.gpu` when the host has
 * one, else Dawn through the `webgpu` npm package (imported lazily, so browsers never load it).
 *
 * Dawn for Node keeps the adapter alive only while the object `create()` returned is referenced:
 * dropping it can segfault later, so it lives in a module-level variable for the whole process.
 */

export interface WebGPUOptions {
  /** Passed to requestAdapter. */
  readonly powerPreference?: GPUPowerPreference;
  /** Ask for a fallback (software) adapter. */
  readonly forceFallbackAdapter?: boolean;
  /** Use shader-f16 when the adapter has it (default true); false tests the f32-storage path. */
  readonly f16?: boolean;
  /**
   * Extra Dawn options for `create()` (Node only), e.g. 'enable-dawn-features=...'. They apply to the
   * first creation in the process only; `create()` is never called twice.
   */
  readonly dawnOptions?: readonly string[];
}

export interface WebGPUDeviceHandle {
  readonly adapter: GPUAdapter;
  readonly device: GPUDevice;
  /** Features enabled on the device. */
  readonly features: readonly string[];
  /** The device's limits (numbers only). */
  readonly limits: Readonly<Record<string, number>>;
  readonly description: string;
  /** WGSL language extensions the implementation supports (GPU.wgslLanguageFeatures), sorted; empty when it does not say. */
  readonly wgslLanguageFeatures: readonly string[];
  /** Dawn for Node (its event loop needs care, see `waitFor`) rather than a browser's navigator.gpu. */
  readonly dawnNode: boolean;
}

/**
 * Dawn rounds timestamps to 65.536 us by default (a browser's defence against timing attacks), too
 * coarse to time small kernels; Node has no such concern. Workgroup-memory zero-initialisation stays
 * on: turning it off is only safe when every kernel writes shared memory before reading it.
 */
const DEFAULT_DAWN_OPTIONS = ['disable-dawn-features=timestamp_quantization'];

/** The object Dawn's create() returned: kept for the life of the process. */
let dawnGPU: GPU | undefined;
let dawnLoad: Promise<GPU | undefined> | undefined;
let reason = 'no WebGPU adapter has been requested yet';

/** Why the last request found no adapter (or that none was requested): for loud reports and skips. */
export function webgpuUnavailableReason(): string {
  return reason;
}

interface NodeProcessLike {
  env: Record<string, string | undefined>;
  platform?: string;
  getuid?: () => number;
}

function nodeProcess(): NodeProcessLike | undefined {
  const p = (globalThis as { process?: NodeProcessLike }).process;
  return p && typeof p.env === 'object' ? p : undefined;
}

/** Dawn warns when XDG_RUNTIME_DIR is unset; point it at a private 0700 folder. */
async function ensureXdgRuntimeDir(proc: NodeProcessLike): Promise<void> {
  if (proc.env['XDG_RUNTIME_DIR'] || proc.platform === 'win32') return;
  try {
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const uid = typeof proc.getuid === 'function' ? proc.getuid() : 0;
    const dir = path.join(os.tmpdir(), `tessera-xdg-${uid}`);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700);
    proc.env['XDG_RUNTIME_DIR'] = dir;
  } catch {
    // Only a warning is at stake.
  }
}

/** `key=a,b` options with the same key are joined, so a caller's toggles add to the defaults. */
function mergeDawnOptions(a: readonly string[], b: readonly string[]): string[] {
  const out = new Map<string, string[]>();
  const plain: string[] = [];
  for (const o of [...a, ...b]) {
    const eq = o.indexOf('=');
    const key = eq > 0 ? o.slice(0, eq) : '';
    if (key.endsWith('-dawn-features')) {
      const list = out.get(key) ?? [];
      for (const t of o.slice(eq + 1).split(',')) if (t && !list.includes(t)) list.push(t);
      out.set(key, list);
    } else plain.push(o);
  }
  return [...plain, ...[...out].map(([k, v]) => `${k}=${v.join(',')}`)];
}

async function loadDawn(options: readonly string[]): Promise<GPU | undefined> {
  const proc = nodeProcess();
  if (!proc) {
    reason = 'navigator.gpu is not available in this environment';
    return undefined;
  }
  await ensureXdgRuntimeDir(proc);
  try {
    // A variable specifier keeps browser bundlers from trying to resolve the Node addon.
    const spec = 'webgpu';
    const mod = (await import(spec)) as { create: (opts: string[]) => GPU };
    dawnGPU = mod.create([...options]);
    return dawnGPU;
  } catch (e) {
    reason = `the 'webgpu' package (Dawn for Node) could not be loaded: ${e instanceof Error ? e.message : String(e)}`;
    return undefined;
  }
}

/** navigator.gpu, or Dawn's GPU object in Node; undefined (see webgpuUnavailableReason) when neither exists. */
export async function getGPU(opts: WebGPUOptions = {}): Promise<{ gpu: GPU; dawnNode: boolean } | undefined> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu && nav.gpu !== dawnGPU) return { gpu: nav.gpu, dawnNode: false };
  if (dawnGPU) return { gpu: dawnGPU, dawnNode: true };
  dawnLoad ??= loadDawn(mergeDawnOptions(DEFAULT_DAWN_OPTIONS, opts.dawnOptions ?? []));
  const gpu = await dawnLoad;
  return gpu ? { gpu, dawnNode: true } : undefined;
}

const WANTED_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'] as const;
const MAX_LIMITS = [
  'maxStorageBuffersPerShaderStage',
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
] as const;

function limitsRecord(l: GPUSupportedLimits): Record<string, number> {
  const out: Record<string, number> = {};
  // GPUSupportedLimits exposes its members as prototype getters.
  for (const key in l) {
    const v = (l as unknown as Record<string, unknown>)[key];
    if (typeof v === 'number') out[key] = v;
  }
  return out;
}

function languageFeatures(gpu: GPU): string[] {
  const set = (gpu as { wgslLanguageFeatures?: Iterable<unknown> }).wgslLanguageFeatures;
  if (!set) return [];
  return [...set].filter((f): f is string => typeof f === 'string').sort();
}

function describe(info: GPUAdapterInfo | undefined): string {
  if (!info) return 'WebGPU adapter';
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s) => s && s.length > 0);
  return parts.length > 0 ? parts.join(' / ') : 'WebGPU adapter';
}

/** An adapter and a device with the features and maximal limits Tessera uses, or undefined. */
export async function requestWebGPUDevice(opts: WebGPUOptions = {}): Promise<WebGPUDeviceHandle | undefined> {
  const got = await getGPU(opts);
  if (!got) return undefined;
  let adapter: GPUAdapter | null;
  try {
    const req: GPURequestAdapterOptions = {};
    if (opts.powerPreference) req.powerPreference = opts.powerPreference;
    if (opts.forceFallbackAdapter) req.forceFallbackAdapter = true;
    adapter = await got.gpu.requestAdapter(req);
  } catch (e) {
    reason = `requestAdapter failed: ${e instanceof Error ? e.message : String(e)}`;
    return undefined;
  }
  if (!adapter) {
    const proc = nodeProcess();
    const icd = proc?.env['VK_ICD_FILENAMES'] ?? proc?.env['VK_DRIVER_FILES'];
    reason = got.dawnNode
      ? `Dawn found no WebGPU adapter (Vulkan driver: ${icd ? `VK_ICD_FILENAMES=${icd}` : 'system default'}). ` +
        'Without a GPU install a software Vulkan driver: lavapipe (apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1, ' +
        'VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.json) or SwiftShader (apt-get install chromium-common libvulkan1, ' +
        'VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json)'
      : 'navigator.gpu.requestAdapter() returned null';
    return undefined;
  }
  const features = WANTED_FEATURES.filter((f) => adapter.features.has(f) && !(f === 'shader-f16' && opts.f16 === false));
  const requiredLimits: Record<string, number> = {};
  const al = limitsRecord(adapter.limits);
  for (const k of MAX_LIMITS) if (al[k] !== undefined) requiredLimits[k] = al[k];
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredFeatures: features, requiredLimits });
  } catch (e) {
    reason = `requestDevice failed: ${e instanceof Error ? e.message : String(e)}`;
    return undefined;
  }
  reason = '';
  return {
    adapter,
    device,
    features: [...device.features].filter((f): f is string => typeof f === 'string').sort(),
    limits: limitsRecord(device.limits),
    description: describe(adapter.info),
    wgslLanguageFeatures: languageFeatures(got.gpu),
    dawnNode: got.dawnNode,
  };
}

// ---------------------------------------------------------------------------------------------
// Waiting on Dawn for Node

type ImmediateFn = (cb: (...a: unknown[]) => void, ...args: unknown[]) => unknown;
let politeWaits = 0;
let savedSetImmediate: ImmediateFn | undefined;

/**
 * While any promise is pending, Dawn for Node ticks its device from `setImmediate`, which turns the
 * event loop into a busy loop: on a machine with few cores that spin starves a software Vulkan
 * driver's worker threads. During a long wait we route Dawn's ticks (argument-less native callbacks)
 * through a 1 ms timer; everyone else's setImmediate is untouched.
 */
function beginPoliteWait(): void {
  if (politeWaits++ > 0) return;
  const g = globalThis as unknown as { setImmediate?: ImmediateFn };
  const orig = g.setImmediate;
  if (typeof orig !== 'function') return;
  savedSetImmediate = orig;
  const isNative = (f: unknown): boolean => typeof f === 'function' && Function.prototype.toString.call(f).includes('[native code]');
  const polite: ImmediateFn = (cb, ...args) => (args.length === 0 && isNative(cb) ? setTimeout(cb, 1) : orig(cb, ...args));
  g.setImmediate = polite;
}

function endPoliteWait(): void {
  if (--politeWaits > 0) return;
  if (savedSetImmediate) (globalThis as unknown as { setImmediate?: ImmediateFn }).setImmediate = savedSetImmediate;
  savedSetImmediate = undefined;
}

export interface WaitOptions {
  /** Dawn for Node: after this many ms of spinning, tick Dawn from a 1 ms timer instead (Infinity: never). */
  readonly spinMs: number;
}

/** Await a Dawn promise; long waits stop busy-spinning (see beginPoliteWait). */
export async function waitFor<T>(p: Promise<T>, dawnNode: boolean, opts: WaitOptions): Promise<T> {
  if (!dawnNode || !Number.isFinite(opts.spinMs)) return p;
  let settled = false;
  let polite = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const done = p.finally(() => {
    settled = true;
    if (timer !== undefined) clearTimeout(timer);
    if (polite) endPoliteWait();
  });
  timer = setTimeout(() => {
    timer = undefined;
    if (!settled) {
      polite = true;
      beginPoliteWait();
    }
  }, Math.max(0, opts.spinMs));
  return done;
}
