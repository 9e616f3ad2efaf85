/**
 * Running formats on a backend: quantize with a format's DSL program, and the fused quantized linear
 * layer `y = x W^T` whose W is read through the format's access function (dequantized in registers).
 */
import { kernel, tensor, type KernelDef } from '../dsl/kernel.js';
import { matmul } from '../dsl/ops.js';
import type { Tensor } from '../dsl/tensor.js';
import { compile, type CompileOptions } from '../passes/pipeline.js';
import type { BackendRuntime } from '../runtime/backend.js';
import { execute, type HostTensor } from '../runtime/execute.js';
import type { AnyFormat, Format, QuantParams, QuantizedMatrix } from './types.js';


/** Quantizes w [N, K] with `format`'s round-to-nearest DSL program on `rt`. */
export async function quantizeOnDevice<P extends QuantParams>(
  format: Format<P>, rt: BackendRuntime, w: Float32Array, N: number, K: number, params: P, opts?: CompileOptions,
): Promise<QuantizedMatrix> {
  const def = format.rtnKernel(N, K, params);
  const out = await execute(compile(def.program, opts), rt, { w: { shape: [N, K], data: w } });
  return format.fromDevice(out, N, K, params);
}

/**
 * `y[M, N] = x[M, K] · W^T` with W quantized as `q`: one kernel reads x and W's storage buffers
 * (named `w_<buffer>`) and never writes a dense W. M may be a number or a symbolic dim name.
 */
export function qlinearKernel(format: AnyFormat, q: QuantizedMatrix, M: number, name = `qlinear_${q.format}`): KernelDef {
  const params = { x: tensor('f32', [M, q.K]), ...format.specs(q, 'w_') };
  return kernel(name, params, (h) => matmul(h['x']!, format.access(h as Record<string, Tensor>, q, 'w_').transpose()));
}

/** Host inputs for qlinearKernel: x plus q's buffers under their `w_` names. */
export function qlinearInputs(q: QuantizedMatrix, x: Float32Array, M: number): Record<string, HostTensor> {
  const inputs: Record<string, HostTensor> = { x: { shape: [M, q.K], data: x } };
  for (const [name, b] of Object.entries(q.buffers)) inputs[`w_${name}`] = { shape: b.shape, data: b.data };
  return inputs;
}
