export { matmulOp, matmulTransBOp, bmmOp, linearOp } from './matmul.js';
