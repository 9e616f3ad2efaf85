export { rmsnormOp } from './rmsnorm.js';
export { layernormOp } from './layernorm.js';
