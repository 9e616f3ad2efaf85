/**
 * The f32 transformer block again under another name, which bench/device/run.sh compiles with
 * `--chain T=1,D=128,H=344`: a small model's decode step (bytes1M's FFN width) as one chained kernel
 * of one workgroup, beside the same step from `block` (two kernels), both against eager PyTorch.
 * On a GPU a launch costs a few µs, about what this step's arithmetic takes.
 */
import { block } from './programs.js';

export const blockChain = block('block_chain', 'f32');
