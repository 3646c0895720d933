import { type KeySet, type StoreDef, sameSet, toHex } from '@kvorum/core'
import type { ClusterView } from './cluster-view.js'
import type { RequestOptions } from './transport.js'

/** Tombstones listed per partition and replica in one reap. */
export const REAP_PAGE = 1000

/**
 * Targets some node keeps hints for: their keys are not reaped while a late
 * hint could bring old versions back. Null when a node could not be asked
 * (it might hold hints): then nothing is reaped.
 */
export async function hintedTargets(view: ClusterView, t: RequestOptions): Promise<Set<string> | null> {
  const out = new Set<string>()
  for (const node of view.cluster.nodes) {
    try {
      for (const target of await view.nodeClient(node.id).hintTargets(t)) out.add(target.target)
    } catch {
      return null
    }
  }
  return out
}

/**
 * True when some hint could still bring an old version of this partition's
 * keys back. A hint for one of its replicas is delivered there; a hint for
 * any other node may be for one of its keys too (that node replicated them
 * before a membership change), and it is merged into the current replicas
 * (MEMBERSHIP rule 9). Hints are counted per target, not per key, so any
 * kept hint blocks the reap: tombstones wait until hints are delivered.
 * (Found by simulation seed 845 with a membership change: a hint for the node
 * that left a partition, re-targeted after its key's tombstone had been
 * reaped, brought the deleted value back.)
 */
export function blocksReap(hinted: ReadonlySet<string>): boolean {
  return hinted.size > 0
}

/** The tombstones every replica lists with the very same dots. */
export function agreedTombstones(lists: readonly KeySet[][]): KeySet[] {
  const [first, ...rest] = lists as [KeySet[], ...KeySet[][]]
  const others = rest.map((l) => new Map(l.map((k) => [toHex(k.key), k.siblings])))
  return first.filter((k) => others.every((m) => sameSet(m.get(toHex(k.key)) ?? [], k.siblings)))
}

/**
 * Reap the tombstones every replica of partition `p` has held past the
 * store's grace period, with the same dots everywhere, when no node keeps
 * hints for any of them. Returns how many keys went.
 */
export async function reapPartition(
  view: ClusterView,
  t: RequestOptions,
  store: StoreDef,
  p: number,
  replicas: readonly string[],
  nowMs: number,
): Promise<number> {
  const beforeMs = nowMs - store.tombstoneGraceMs
  const lists = await Promise.all(replicas.map((id) => view.nodeClient(id).listTombstones(t, store.name, { partition: p, beforeMs, limit: REAP_PAGE })))
  const agreed = agreedTombstones(lists)
  if (agreed.length === 0) return 0
  // Ask for hints again now, not only at the start of the pass: a pass can outlast the grace
  // period, and a hint stored since it began may hold versions these tombstones cover, which
  // would come back when it is delivered after the reap.
  const hinted = await hintedTargets(view, t)
  if (!hinted || blocksReap(hinted)) return 0
  const counts = await Promise.all(replicas.map((id) => view.nodeClient(id).reap(t, store.name, agreed)))
  return Math.max(...counts)
}
