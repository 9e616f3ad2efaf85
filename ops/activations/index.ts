export { siluOp, geluOp, geluTanhOp, reluOp, sigmoidOp } from './unary.js';
export { siluChainOp } from './silu-chain.js';
export { swigluOp } from './swiglu.js';
