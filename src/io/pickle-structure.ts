/**
 * The one walk over an unpickled result (pickle.ts) that refuses reference cycles and nesting
 * deeper than a limit, without recursion, so a hostile file cannot hang or overflow a consumer.
 */
import { PickleError } from './pickle-values.ts';

function isContainer(x: unknown): x is object {
  if (typeof x !== 'object' || x === null) return false;
  if (Array.isArray(x)) return true;
  const proto = Object.getPrototypeOf(x) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * Walks the result once, without recursion: rejects reference cycles (a list containing
 * itself: Python allows it, no checkpoint needs it, and every recursive consumer would hang
 * or overflow) and nesting deeper than `maxDepth`. Shared sub-objects are visited once, and
 * their height is remembered so depth through sharing is still counted exactly.
 */
export function checkStructure(root: unknown, maxDepth: number): void {
  if (!isContainer(root)) return;
  const height = new Map<object, number>(); // finished nodes
  const onPath = new Set<object>();
  const path: { node: object; children: unknown[]; next: number; height: number }[] = [];
  const enter = (node: object): void => {
    if (path.length >= maxDepth) throw new PickleError(`nesting deeper than ${maxDepth} levels (limit maxDepth)`);
    onPath.add(node);
    path.push({ node, children: Array.isArray(node) ? node : Object.values(node), next: 0, height: 1 });
  };
  enter(root);
  while (path.length) {
    const frame = path[path.length - 1]!;
    if (frame.next < frame.children.length) {
      const child = frame.children[frame.next++];
      if (!isContainer(child)) continue;
      if (onPath.has(child)) throw new PickleError('the data contains a reference cycle');
      const h = height.get(child);
      if (h === undefined) enter(child);
      else if (path.length + h > maxDepth) throw new PickleError(`nesting deeper than ${maxDepth} levels (limit maxDepth)`);
      else frame.height = Math.max(frame.height, h + 1);
      continue;
    }
    path.pop();
    onPath.delete(frame.node);
    height.set(frame.node, frame.height);
    const parent = path[path.length - 1];
    if (parent) parent.height = Math.max(parent.height, frame.height + 1);
  }
}
