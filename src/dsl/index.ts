/** The public DSL surface: `import { kernel, tensor, dim, softmax } from 'tessera'`. */
export { kernel, tensor, dim, type KernelDef, type TensorSpec, type Params, type Handles } from './kernel.js';
export { Tensor, type TensorLike, type Axes } from './tensor.js';
export * from './ops.js';
export { softmax, logSoftmax, layernorm, rmsnorm } from './composites.js';
export { compute, reduceSum, reduceMax, reduceMin, dimv, select, lit, IndexExpr, type IndexLike } from './compute.js';
