/**
 * `tessera devices`: which backends this machine can run: for WebGPU the adapter's features, key
 * limits and cached profile (what untuned matmuls take there), for CUDA every device the driver
 * addon's probe reports (or the reason there is none) and the nvcc that compiles the kernels.
 */
import { JSRuntime } from '../backends/js/runtime.js';
import type { BackendRuntime } from '../runtime/backend.js';
import { cudaAddonUnavailableReason, loadCudaAddon, type CudaProbe } from '../backends/cuda/native.js';
import { nvccPath, nvccVersion } from '../backends/cuda/nvcc.js';
import { cudaEmulatorUnavailableReason, CudaEmulatorAddon } from '../backends/cuda/emulator.js';
import { UsageError, type CliIO, type Command } from './args.js';
import { tryWebGPU } from './backends.js';
import { deviceKey, describeProfile, readProfile } from '../tune/index.js';

/** The limits that decide whether a kernel fits: shown by `devices`, checked by the runtime before dispatch. */
export const KEY_LIMITS = [
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
  'maxComputeWorkgroupStorageSize',
  'maxStorageBuffersPerShaderStage',
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxUniformBufferBindingSize',
] as const;

export const devicesCommand: Command = {
  name: 'devices',
  summary: 'list the backends available here: JS, WebGPU adapters, CUDA',
  usage: ['devices'],
  flags: [],
  async run(args, io) {
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument '${args.positionals[0]}'`, 'devices');
    const profileLine = (rt: BackendRuntime) => {
      const profile = readProfile(deviceKey(rt));
      io.out(`        profile: ${profile ? describeProfile(profile) : `not calibrated (tessera tune${rt.info.kind === 'js' ? ' --backend js' : ''} calibrates it)`}\n`);
    };
    const js = new JSRuntime();
    io.out(`js      available: ${js.info.description}\n`);
    profileLine(js);
    js.destroy();
    const gpu = await tryWebGPU();
    if ('rt' in gpu) {
      const { info } = gpu.rt;
      io.out(`webgpu  available: ${info.description}\n`);
      io.out(`        features: ${info.features.length > 0 ? [...info.features].sort().join(', ') : 'none'}\n`);
      const limits = KEY_LIMITS.filter((k) => info.limits[k] !== undefined).map((k) => `${k} ${info.limits[k]}`);
      io.out(`        limits: ${limits.join(', ')}\n`);
      profileLine(gpu.rt);
      gpu.rt.destroy();
    } else {
      io.out(`webgpu  not available: ${gpu.reason}\n`);
    }
    describeCuda(io);
    describeCudaEmulator(io);
    return 0;
  },
};

/** `12040` -> `12.4`. */
function driverText(v: number | undefined): string {
  return v === undefined ? 'unknown' : `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;
}

function describeCuda(io: CliIO): void {
  const nvcc = nvccVersion();
  const nvccLine = nvcc ? `nvcc ${nvcc} at ${nvccPath()}` : 'nvcc not found (compile --target cuda writes .cu without binaries; the runtime needs it)';
  const addon = loadCudaAddon();
  let probe: CudaProbe | undefined;
  let reason: string | undefined;
  if (!addon) reason = cudaAddonUnavailableReason() ?? 'the CUDA addon did not load';
  else {
    try {
      probe = addon.probe();
      if (!probe.available) reason = probe.reason ?? 'the CUDA driver is not available';
      else if (probe.devices.length === 0) reason = 'the CUDA driver reports no devices';
    } catch (e) {
      reason = `probing the CUDA driver failed: ${e instanceof Error ? e.message : String(e)}`;
    }
  }
  if (reason !== undefined || !probe) {
    io.out(`cuda    not available: ${reason}\n`);
    io.out(`        ${nvccLine}\n`);
    return;
  }
  io.out(`cuda    available: ${probe.devices.length} device${probe.devices.length === 1 ? '' : 's'}, driver ${driverText(probe.driverVersion)}${nvcc ? '' : ' (no nvcc: --backend cuda cannot compile kernels)'}\n`);
  for (const d of probe.devices) {
    const [major, minor] = d.computeCapability;
    io.out(`        device ${d.index}: ${d.name} (sm_${major}${minor}, ${d.smCount} SMs, ${(d.totalMem / 2 ** 30).toFixed(1)} GiB, ${d.maxThreadsPerBlock} threads per block, ${d.maxSharedMemPerBlock / 1024} KiB shared per block)\n`);
  }
  io.out(`        ${nvccLine}\n`);
}

/** The CUDA emulator: Tessera's CUDA kernels as host code, to check them without a GPU. */
function describeCudaEmulator(io: CliIO): void {
  const why = cudaEmulatorUnavailableReason();
  if (why) io.out(`cuda-emu not available: ${why}\n`);
  else io.out(`cuda-emu available: CUDA kernels compiled by ${new CudaEmulatorAddon().builtWith} (checks results, not speed)\n`);
}
