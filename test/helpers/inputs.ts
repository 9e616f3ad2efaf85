/** Deterministic f32 inputs for a kernel's parameters at given dims (values in (-0.9, 0.9), one seed per input). */
import type * as D from '../../src/dsl/index.js';

const data = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * 0.9);

export function inputsFor(def: D.KernelDef, dims: Record<string, number>): Record<string, { shape: number[]; data: Float32Array }> {
  const ins: Record<string, { shape: number[]; data: Float32Array }> = {};
  def.program.inputs.forEach((p, i) => {
    const shape = p.shape.map((d) => (typeof d === 'number' ? d : dims[(d as { sym: string }).sym]!));
    ins[p.name] = { shape, data: data(shape.reduce((a, b) => a * b, 1), i) };
  });
  return ins;
}
