/** `tessera devices`: which backends this machine can run, and for WebGPU the adapter's features and key limits. */
import { JSRuntime } from '../backends/js/runtime.js';
import { UsageError, type Command } from './args.js';
import { tryWebGPU } from './backends.js';

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
    const js = new JSRuntime();
    io.out(`js      available: ${js.info.description}\n`);
    js.destroy();
    const gpu = await tryWebGPU();
    if ('rt' in gpu) {
      const { info } = gpu.rt;
      io.out(`webgpu  available: ${info.description}\n`);
      io.out(`        features: ${info.features.length > 0 ? [...info.features].sort().join(', ') : 'none'}\n`);
      const limits = KEY_LIMITS.filter((k) => info.limits[k] !== undefined).map((k) => `${k} ${info.limits[k]}`);
      io.out(`        limits: ${limits.join(', ')}\n`);
      gpu.rt.destroy();
    } else {
      io.out(`webgpu  not available: ${gpu.reason}\n`);
    }
    io.out('cuda    not available in this build\n');
    return 0;
  },
};
