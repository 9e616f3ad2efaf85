/**
 * A seeded random program generator: DAGs of elementwise, reduction, movement, matmul and composite
 * ops over symbolic and constant dims, built through the public DSL. Every backend's result is
 * compared with the reference interpreter; a failure replays from its seed alone.
 *
 * Values stay bounded (activations squash, divisors are kept away from zero) so f32 kernels and the
 * float64 reference agree within a tolerance; ops that are discontinuous (comparisons, floor,
 * argmax) only ever see exact values (inputs and views of inputs), where f32 and float64 agree.
 */
import type { DType } from '../ir/dtype.js';
import { dimEq, type Dim } from '../ir/dims.js';
import { kernel, tensor, type KernelDef } from '../dsl/kernel.js';
import * as T from '../dsl/ops.js';
import { layernorm, logSoftmax, rmsnorm, softmax } from '../dsl/composites.js';
import { compute, reduceSum } from '../dsl/compute.js';
import type { Tensor } from '../dsl/tensor.js';
import { Rng } from './rng.js';
import { TesseraError } from '../errors.js';

interface Entry {
  t: Tensor;
  exact: boolean; // an input or a view of one: safe for discontinuous ops
}

export interface GeneratedProgram {
  readonly seed: number;
  readonly def: KernelDef;
  /** Values for the symbolic dims. */
  readonly dims: Readonly<Record<string, number>>;
  /** Ops used, for coverage reports. */
  readonly ops: readonly string[];
}

const SIZES = [1, 2, 3, 5, 7, 13, 17, 33];

export function generateProgram(seed: number, maxOps = 8): GeneratedProgram {
  const rng = new Rng(seed);
  const symbolic = rng.chance(0.5);
  const dims: Record<string, number> = { A: rng.pick(SIZES), B: rng.pick(SIZES), C: rng.pick(SIZES.slice(1)) };
  const d = (name: 'A' | 'B' | 'C'): Dim => (symbolic ? { sym: name } : dims[name]!);
  const base3 = rng.chance(0.3);
  const shapes: Dim[][] = base3 ? [[d('A'), d('B'), d('C')], [d('B'), d('C')], [d('C')]] : [[d('A'), d('B')], [d('B')], [d('A'), 1], [d('B'), d('C')]];
  const nInputs = rng.int(1, 3);
  const params: Record<string, { dtype: DType; shape: readonly Dim[] }> = {};
  for (let i = 0; i < nInputs; i++) params[`x${i}`] = tensor('f32', i === 0 ? shapes[0]! : rng.pick(shapes));
  if (rng.chance(0.2)) params.idx = tensor('i32', [rng.int(1, 6)]);
  const used: string[] = [];

  const def = kernel(`fuzz${seed}`, params, (ins) => {
    const pool: Entry[] = Object.entries(ins).filter(([k]) => k !== 'idx').map(([, t]) => ({ t, exact: true }));
    const idx = ins.idx;
    const floats = () => pool.filter((e) => e.t.dtype === 'f32');
    const push = (op: string, t: Tensor, exact = false) => {
      used.push(op);
      pool.push({ t, exact });
    };
    const nOps = rng.int(1, maxOps);
    for (let step = 0; step < nOps; step++) {
      const e = rng.pick(floats());
      const x = e.t;
      const kind = rng.int(0, 15);
      try {
        switch (kind) {
          case 0: case 1: {
            const op = rng.pick(['tanh', 'sigmoid', 'sin', 'cos', 'relu', 'silu', 'gelu', 'gelu_tanh', 'abs', 'neg', 'expt', 'logp', 'sqrtp', 'rsqrtp', 'recipp'] as const);
            const pos = () => T.add(T.abs(x), 0.5);
            const y =
              op === 'tanh' ? T.tanh(x) : op === 'sigmoid' ? T.sigmoid(x) : op === 'sin' ? T.sin(x) : op === 'cos' ? T.cos(x) : op === 'relu' ? T.relu(x)
              : op === 'silu' ? T.silu(x) : op === 'gelu' ? T.gelu(x) : op === 'gelu_tanh' ? T.gelu(x, 'tanh') : op === 'abs' ? T.abs(x) : op === 'neg' ? T.neg(x)
              : op === 'expt' ? T.exp(T.tanh(x)) : op === 'logp' ? T.log(pos()) : op === 'sqrtp' ? T.sqrt(pos()) : op === 'rsqrtp' ? T.rsqrt(pos()) : T.reciprocal(pos());
            push(op, y, op === 'abs' || op === 'neg' ? e.exact : false);
            break;
          }
          case 2: case 3: case 4: {
            const other = rng.pick(floats()).t;
            let a = x;
            let b: Tensor | number = other;
          try {
              T.broadcastShapes(a.shape, other.shape);
            } catch {
              b = rng.uniform(-2, 2);
            }
            const op = rng.pick(['add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'pow'] as const);
            if (op === 'div') b = typeof b === 'number' ? (Math.abs(b) < 0.25 ? 1.5 : b) : T.add(T.abs(b), 1);
            if (op === 'pow') {
              a = T.add(T.abs(a), 0.5);
              b = rng.pick([2, 0.5, 1.5, -1]);
            }
            push(op, T[op](a, b));
            break;
          }
          case 5: case 6: {
            const axes = x.shape.map((_, i) => i).filter(() => rng.chance(0.5));
            const ax = axes.length ? axes : [x.rank - 1];
            const keep = rng.chance(0.5);
            const op = rng.pick(['sum', 'mean', 'max', 'min'] as const);
            if (x.rank === 0) break;
            push(op, T[op](x, ax, keep));
            break;
          }
          case 7: {
            if (x.rank === 0) break;
            const op = rng.pick(['softmax', 'log_softmax', 'rmsnorm', 'layernorm'] as const);
            push(op, op === 'softmax' ? softmax(x, rng.int(0, x.rank - 1)) : op === 'log_softmax' ? logSoftmax(x) : op === 'rmsnorm' ? rmsnorm(x) : layernorm(x));
            break;
          }
          case 8: {
            if (x.rank < 2) break;
            const perm = x.shape.map((_, i) => i).sort(() => rng.next() - 0.5);
            push('permute', T.permute(x, perm), e.exact);
            break;
          }
          case 9: {
            if (x.rank === 0) break;
            if (rng.chance(0.5) || x.rank === 1) push('reshape', T.reshape(x, [-1]), e.exact);
            else push('reshape', T.reshape(x, [...x.shape.slice(0, -2), -1]), e.exact);
            break;
          }
          case 10: {
            if (x.rank === 0) break;
            const specs = x.shape.map((n) => {
              const size = typeof n === 'number' ? n : dims[(n as { sym: string }).sym]!;
              if (size < 2 || !rng.chance(0.6)) return undefined;
              const step = rng.pick([1, 1, 2, -1]);
              return step > 0 ? { start: rng.int(0, 1), step } : { step };
            });
            push('slice', T.slice(x, specs), e.exact);
            break;
          }
          case 11: {
            if (x.rank === 0) break;
            push('pad', T.pad(x, x.shape.map(() => [rng.int(0, 2), rng.int(0, 2)] as const), rng.pick([0, -1, 0.5])), e.exact);
            break;
          }
          case 12: {
            if (x.rank === 0) break;
            const other = floats().find((o) => o.t !== x && o.t.rank === x.rank && o.t.shape.every((dd, i) => i === 0 || dimEq(dd, x.shape[i]!)));
            push('concat', T.concat([x, other ? other.t : T.neg(x)], 0), e.exact && (other?.exact ?? true));
            break;
          }
          case 13: {
            if (x.rank < 1) break;
            // matmul against a transposed operand or itself: x [.., m, k] @ y [.., k, n]
            const y = x.rank >= 2 ? T.transpose(x) : x;
            const mm = x.rank >= 2 ? T.matmul(x, y) : T.matmul(x, T.reshape(x, [x.shape[0]!, 1]));
            // half the time an epilogue: a bias along the last axis and an activation
            if (rng.chance(0.5) && mm.rank >= 1) {
              const bias = T.tanh(T.slice(T.reshape(x, [-1]), [{ end: mm.shape[mm.rank - 1]! }]));
              push('matmul+epilogue', rng.chance(0.5) ? T.silu(T.add(mm, bias)) : T.relu(T.mul(T.add(mm, bias), 0.5)));
            } else push('matmul', mm);
            break;
          }
          case 14: {
            const ex = pool.filter((p) => p.exact && p.t.dtype === 'f32' && p.t.rank > 0);
            if (!ex.length) break;
            const a = rng.pick(ex).t;
            const which = rng.int(0, 3);
            if (which === 0) push('where', T.where(T.gt(a, 0), x.rank ? T.tanh(x) : x, T.neg(a)), false);
            else if (which === 1) push('argmax', T.cast(T.argmax(a, rng.int(0, a.rank - 1)), 'f32'), true);
            else if (which === 2) push('floor', T.floor(T.mul(a, 3)), false);
            else push('cast', T.cast(T.add(T.cast(T.floor(T.mul(a, 4)), 'i32'), 1), 'f32'), true);
            break;
          }
          case 15: {
            if (idx && x.rank > 0) push('gather', T.gather(x, idx, rng.int(0, x.rank - 1)), e.exact);
            else if (x.rank === 2) {
              const [m, n] = x.shape as [Dim, Dim];
              push('compute', compute([n, m], (i, j) => reduceSum(m, (k) => x.at(k, i).mul(x.at(j, i)))));
            } else push('expand', T.add(x, T.full([...x.shape], 0.25)), e.exact);
            break;
          }
        }
      } catch (err) {
        // Random operands may not broadcast; skip the step (any other error is a real failure).
        if (!(err instanceof TesseraError) || (err.code !== 'E_SHAPE' && err.code !== 'E_AXIS')) throw err;
      }
    }
    const last = pool[pool.length - 1]!.t;
    const outs: Record<string, Tensor> = { y: last };
    if (pool.length > 2 && rng.chance(0.4)) outs.z = rng.pick(pool.slice(0, -1)).t;
    // siblings over the same iteration space as another result: candidates for multi-output fusion
    if (rng.chance(0.35)) {
      const src = rng.pick(floats()).t;
      outs.w = rng.chance(0.5) || src.rank === 0 ? T.sigmoid(src) : T.max(src, src.rank - 1, rng.chance(0.5));
    }
    return outs;
  });
  return { seed, def, dims: symbolic ? dims : {}, ops: used };
}

/** Seeded input values: uniform in [-2, 2], with zeros and exact small integers mixed in. */
export function randomInputs(def: KernelDef, dims: Readonly<Record<string, number>>, seed: number): Record<string, { shape: number[]; data: Float32Array | Int32Array }> {
  const rng = new Rng(seed ^ 0x9e3779b9);
  const out: Record<string, { shape: number[]; data: Float32Array | Int32Array }> = {};
  const allDims = { A: 1, B: 1, C: 1, ...dims };
  for (const p of def.program.inputs) {
    const shape = p.shape.map((dd) => (typeof dd === 'number' ? dd : allDims[(dd as { sym: 'A' }).sym]));
    const n = shape.reduce((a, b) => a * b, 1);
    if (p.dtype === 'i32') out[p.name] = { shape, data: Int32Array.from({ length: n }, () => rng.int(-2, 40)) };
    else out[p.name] = { shape, data: Float32Array.from({ length: n }, () => (rng.chance(0.1) ? 0 : rng.chance(0.1) ? rng.int(-3, 3) : rng.uniform(-2, 2))) };
  }
  return out;
}
