/**
 * What a GEMV costs on this adapter, whatever the schedule: hand-written WGSL variants of
 * out[N] = x[K] @ w[K, N] (weights stored [in, out], as the transformer block's are) timed side by
 * side in one process, each checked against a CPU reference first. Variants: one column per
 * invocation (scalar, and unrolled by 4), 4 and 8 columns per invocation with vec4 loads, and K
 * split across the lanes of a workgroup summed through workgroup memory; workgroups of 8 to 64.
 * Compare the best with Tessera's kernels for the same shape (`bench/side-by-side.ts --cases
 * block-1x128x344`): where every variant lands near one time, that is the adapter's floor.
 *
 *   VK_ICD_FILENAMES=... node --import tsx bench/gemv-floor.ts [K,N ...]    (default 128,344 344,128)
 */
import { requestWebGPUDevice, waitFor, webgpuUnavailableReason } from '../src/backends/wgsl/device.js';
import { median } from './stats.js';

const ROUNDS = 7;
const LAUNCHES = 40;
// WebGPU's usage flags (the globals are not defined in Node without Dawn's `globals`)
const STORAGE = 0x80;
const COPY_SRC = 0x4;
const COPY_DST = 0x8;
const MAP_READ = 0x1;

interface Variant {
  readonly name: string;
  readonly code: string;
  readonly groups: number;
}

const header = (w: string) =>
  `@group(0) @binding(0) var<storage, read> x: array<f32>;\n@group(0) @binding(1) var<storage, read> w: array<${w}>;\n@group(0) @binding(2) var<storage, read_write> out: array<f32>;\n`;

/** `cols` columns per invocation (a multiple of 4), read as vec4s of w viewed as [K, N / 4]. */
function vec4Columns(K: number, N: number, cols: number, wg: number): Variant {
  const q = cols / 4;
  const accs = Array.from({ length: q }, (_, j) => `a${j}`);
  const fmas = accs.map((a, j) => `${a} = fma(xv, w[k * ${N / 4}u + ${q}u * n + ${j}u], ${a});`).join(' ');
  const stores = accs.flatMap((a, j) => ['x', 'y', 'z', 'w'].map((c, i) => `out[${cols}u * n + ${4 * j + i}u] = ${a}.${c};`)).join(' ');
  return {
    name: `${cols} columns vec4, wg ${wg}`,
    groups: Math.ceil(N / cols / wg),
    code: `${header('vec4<f32>')}@compute @workgroup_size(${wg}) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let n = g.x; if (n >= ${N / cols}u) { return; }
  ${accs.map((a) => `var ${a} = vec4<f32>();`).join(' ')}
  for (var k = 0u; k < ${K}u; k++) { let xv = vec4<f32>(x[k]); ${fmas} }
  ${stores}
}`,
  };
}

function variants(K: number, N: number): Variant[] {
  const vs: Variant[] = [];
  for (const wg of [8, 16, 32, 64]) {
    vs.push({
      name: `1 column, wg ${wg}`,
      groups: Math.ceil(N / wg),
      code: `${header('f32')}@compute @workgroup_size(${wg}) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let n = g.x; if (n >= ${N}u) { return; }
  var acc = 0.0;
  for (var k = 0u; k < ${K}u; k++) { acc = fma(x[k], w[k * ${N}u + n], acc); }
  out[n] = acc;
}`,
    });
    if (K % 4 === 0)
      vs.push({
        name: `1 column, K unrolled by 4, wg ${wg}`,
        groups: Math.ceil(N / wg),
        code: `${header('f32')}@compute @workgroup_size(${wg}) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let n = g.x; if (n >= ${N}u) { return; }
  var acc = 0.0;
  for (var k = 0u; k < ${K}u; k += 4u) {
    acc = fma(x[k], w[k * ${N}u + n], acc); acc = fma(x[k + 1u], w[(k + 1u) * ${N}u + n], acc);
    acc = fma(x[k + 2u], w[(k + 2u) * ${N}u + n], acc); acc = fma(x[k + 3u], w[(k + 3u) * ${N}u + n], acc);
  }
  out[n] = acc;
}`,
      });
    for (const cols of [4, 8]) if (N % cols === 0) vs.push(vec4Columns(K, N, cols, wg));
    // K split across S lanes: the workgroup is C columns x S slices, summed through workgroup memory
    for (const S of [4, 8]) {
      if (wg < S) continue;
      const C = wg / S;
      vs.push({
        name: `K split over ${S} lanes, wg ${wg}`,
        groups: Math.ceil(N / C),
        code: `${header('f32')}var<workgroup> part: array<f32, ${wg}>;
@compute @workgroup_size(${wg}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let c = li % ${C}u; let s = li / ${C}u; let n = wid.x * ${C}u + c; let nn = min(n, ${N - 1}u);
  var acc = 0.0;
  for (var k = s; k < ${K}u; k += ${S}u) { acc = fma(x[k], w[k * ${N}u + nn], acc); }
  part[li] = acc;
  workgroupBarrier();
  if (s == 0u && n < ${N}u) { var t = 0.0; for (var j = 0u; j < ${S}u; j++) { t += part[j * ${C}u + c]; } out[n] = t; }
}`,
      });
    }
  }
  return vs;
}

const handle = await requestWebGPUDevice();
if (!handle) throw new Error(`no WebGPU adapter: ${webgpuUnavailableReason()}`);
const device = handle.device;
const wait = <T>(p: Promise<T>) => waitFor(p, handle.dawnNode, { spinMs: 1 });
console.log(handle.description);

for (const arg of process.argv.slice(2).length ? process.argv.slice(2) : ['128,344', '344,128']) {
  const [K, N] = arg.split(',').map(Number) as [number, number];
  const buffer = (size: number, usage: number) => device.createBuffer({ size, usage });
  const x = buffer(K * 4, STORAGE | COPY_DST);
  const w = buffer(K * N * 4, STORAGE | COPY_DST);
  const out = buffer(N * 4, STORAGE | COPY_SRC);
  const readback = buffer(N * 4, MAP_READ | COPY_DST);
  const xs = Float32Array.from({ length: K }, (_, i) => Math.sin(i) * 0.5);
  const ws = Float32Array.from({ length: K * N }, (_, i) => Math.cos(i * 0.37) * 0.5);
  device.queue.writeBuffer(x, 0, xs);
  device.queue.writeBuffer(w, 0, ws);
  const ref = new Float64Array(N);
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) ref[n]! += xs[k]! * ws[k * N + n]!;

  const pipes = variants(K, N).map((v) => {
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: v.code }), entryPoint: 'main' } });
    const group = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [x, w, out].map((b, binding) => ({ binding, resource: { buffer: b } })) });
    return { ...v, pipeline, group };
  });
  // launches of one variant in one compute pass; wall time per launch
  const run = async (p: (typeof pipes)[number], launches: number): Promise<number> => {
    const t0 = performance.now();
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(p.pipeline);
    pass.setBindGroup(0, p.group);
    for (let i = 0; i < launches; i++) pass.dispatchWorkgroups(p.groups);
    pass.end();
    device.queue.submit([enc.finish()]);
    await wait(device.queue.onSubmittedWorkDone());
    return (performance.now() - t0) / launches;
  };
  for (const p of pipes) {
    await run(p, 1);
    const enc = device.createCommandEncoder();
    enc.copyBufferToBuffer(out, 0, readback, 0, N * 4);
    device.queue.submit([enc.finish()]);
    await wait(readback.mapAsync(MAP_READ));
    const got = new Float32Array(readback.getMappedRange().slice(0));
    readback.unmap();
    const bad = [...got].findIndex((v, n) => !(Math.abs(v - ref[n]!) <= 1e-4 * (1 + Math.abs(ref[n]!))));
    if (bad >= 0) throw new Error(`${p.name}: out[${bad}] = ${got[bad]}, expected ${ref[bad]}`);
  }
  const times = pipes.map(() => [] as number[]);
  for (let r = 0; r < ROUNDS; r++) for (let i = 0; i < pipes.length; i++) {
    const j = (i + r) % pipes.length;
    times[j]!.push(await run(pipes[j]!, LAUNCHES));
  }
  const rows = pipes.map((p, i) => ({ name: p.name, us: median(times[i]!) * 1000 })).sort((a, b) => a.us - b.us);
  console.log(`\nGEMV x[${K}] @ w[${K}, ${N}] (wall per launch, ${LAUNCHES} launches per pass, median of ${ROUNDS} interleaved rounds):`);
  for (const r of rows) console.log(`  ${r.us.toFixed(1).padStart(8)} us  ${r.name}`);
  for (const b of [x, w, out, readback]) b.destroy();
}
process.exit(0);
