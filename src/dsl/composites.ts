/**
 * Composite ops, decomposed into primitives so that fusion sees their parts: a softmax becomes
 * max, sub, exp, sum and div, which the row-reduction schedule runs as one kernel.
 */
import { intArg, numberArg, tensorArg } from './args.js';
import { atCallSite, dslError } from './build.js';
import { add, div, exp, log, max, mean, mul, rsqrt, sub, sum } from './ops.js';
import type { Tensor } from './tensor.js';
import { checkAxis } from '../ir/infer.js';
import { isFloat } from '../ir/dtype.js';

function floatOnly(name: string, x: Tensor): void {
  if (!isFloat(x.dtype)) throw dslError('E_DTYPE', `${name} expects a float tensor, got ${x.dtype}`);
}

export function softmax(x: Tensor, axis = -1): Tensor {
  tensorArg('softmax', 'x', x);
  intArg('softmax', 'axis', axis);
  floatOnly('softmax', x);
  const a = atCallSite(() => checkAxis(axis, x.rank));
  const e = exp(sub(x, max(x, a, true)));
  return div(e, sum(e, a, true));
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  tensorArg('log_softmax', 'x', x);
  intArg('log_softmax', 'axis', axis);
  floatOnly('log_softmax', x);
  const a = atCallSite(() => checkAxis(axis, x.rank));
  const shifted = sub(x, max(x, a, true));
  return sub(shifted, log(sum(exp(shifted), a, true)));
}

/** Layer norm over the last axis, with optional gain and bias of shape [last]. */
export function layernorm(x: Tensor, gamma?: Tensor, beta?: Tensor, eps = 1e-5): Tensor {
  tensorArg('layernorm', 'x', x);
  if (gamma !== undefined) tensorArg('layernorm', 'gamma', gamma);
  if (beta !== undefined) tensorArg('layernorm', 'beta', beta);
  numberArg('layernorm', 'eps', eps);
  floatOnly('layernorm', x);
  const a = x.rank - 1;
  const centered = sub(x, mean(x, a, true));
  let y = mul(centered, rsqrt(add(mean(mul(centered, centered), a, true), eps)));
  if (gamma) y = mul(y, gamma);
  if (beta) y = add(y, beta);
  return y;
}

/** RMS norm over the last axis: x / sqrt(mean(x^2) + eps) * gamma. */
export function rmsnorm(x: Tensor, gamma?: Tensor, eps = 1e-5): Tensor {
  tensorArg('rmsnorm', 'x', x);
  if (gamma !== undefined) tensorArg('rmsnorm', 'gamma', gamma);
  numberArg('rmsnorm', 'eps', eps);
  floatOnly('rmsnorm', x);
  const a = x.rank - 1;
  const y = mul(x, rsqrt(add(mean(mul(x, x), a, true), eps)));
  return gamma ? mul(y, gamma) : y;
}
