/**
 * Where each graph node was written: the DSL records the call site of the op that first created a
 * node, so errors found later (at compile or dispatch) can still point at the author's line.
 * Kept beside the graph, not in it: equal nodes are one node wherever they were written.
 */
import { siteOf, type SourceLocation } from '../errors.js';
import type { Node } from './graph.js';

/** An Error captured at the DSL call (cheap: V8 formats its stack only when read). */
const sites = new WeakMap<Node, Error>();

export function recordSite(n: Node, captured: Error): void {
  if (!sites.has(n)) sites.set(n, captured);
}

export function nodeSite(n: Node): SourceLocation | undefined {
  const e = sites.get(n);
  return e ? siteOf(e) : undefined;
}
