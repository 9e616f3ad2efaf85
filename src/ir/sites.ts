/**
 * Where each graph node was written: the DSL records the call site of the op that first created a
 * node, so errors found later (at compile or dispatch) can still point at the author's line.
 * Kept beside the graph, not in it: equal nodes are one node wherever they were written.
 */
import type { SourceLocation } from '../errors.js';
import type { Node } from './graph.js';

const sites = new WeakMap<Node, SourceLocation>();

export function recordSite(n: Node, loc: SourceLocation | undefined): void {
  if (loc && !sites.has(n)) sites.set(n, loc);
}

export function nodeSite(n: Node): SourceLocation | undefined {
  return sites.get(n);
}
