import { type StoreDef, BRANCH_FANOUT, diffHashes } from '@kvorum/core'
import type { RequestOptions } from './transport.js'
import type { ClusterView } from './cluster-view.js'

/** Indices where the packed hash runs of the replicas do not all agree. */
export function unionDiffs(runs: readonly Uint8Array[]): number[] {
  const out = new Set<number>()
  const [first, ...rest] = runs as [Uint8Array, ...Uint8Array[]]
  for (const r of rest) for (const i of diffHashes(first, r)) out.add(i)
  return [...out].sort((a, b) => a - b)
}

/**
 * Walk one partition's Merkle tree on its replicas, top-down: the branches,
 * then the leaves under the branches that differ. Returns the segments where
 * the replicas disagree; the bytes read follow the differences.
 */
export async function differingSegments(view: ClusterView, t: RequestOptions, store: StoreDef, p: number, replicas: readonly string[]): Promise<number[]> {
  const branches = await Promise.all(replicas.map((id) => view.nodeClient(id).merkleBranches(t, store.name, p)))
  const segments: number[] = []
  for (const b of unionDiffs(branches)) {
    const leaves = await Promise.all(replicas.map((id) => view.nodeClient(id).merkleLeaves(t, store.name, p, b)))
    for (const leaf of unionDiffs(leaves)) segments.push(b * BRANCH_FANOUT + leaf)
  }
  return segments
}
