export { softmaxOp } from './softmax.js';
export { logSoftmaxOp } from './log-softmax.js';
