import murmur from 'murmurhash3js-revisited'
import { assert } from './errors.js'
import type { ClusterDef, NodeDef } from './cluster.js'
import { LIMITS } from './limits.js'

/** murmur3 x86 32-bit of the key bytes, seed 0, as an unsigned integer. */
export function keyHash(key: Uint8Array): number {
  return murmur.x86.hash32(key, 0) >>> 0
}

function log2(q: number): number {
  assert(q > 0 && (q & (q - 1)) === 0, `partition count ${q} must be a power of two`)
  return 31 - Math.clz32(q)
}

/** The partition of a hash: its top log2(Q) bits. */
export function partitionOfHash(hash: number, partitions: number): number {
  const bits = log2(partitions)
  return bits === 0 ? 0 : hash >>> (32 - bits)
}

/** The Merkle segment (leaf) of a hash inside its partition: the next segmentBits bits. */
export function segmentOfHash(hash: number, partitions: number): number {
  const shift = 32 - log2(partitions) - LIMITS.segmentBits
  return (hash >>> shift) & ((1 << LIMITS.segmentBits) - 1)
}

/** Nodes ordered so that zones alternate (z1, z2, z3, z1, ...), ids sorted inside a zone. */
function interleaveZones(nodes: readonly NodeDef[]): NodeDef[] {
  const byZone = new Map<string, NodeDef[]>()
  for (const node of [...nodes].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    const zone = node.zone ?? ''
    byZone.set(zone, [...(byZone.get(zone) ?? []), node])
  }
  const queues = [...byZone.values()]
  const out: NodeDef[] = []
  while (out.length < nodes.length) for (const q of queues) if (q.length > 0) out.push(q.shift() as NodeDef)
  return out
}

/** Even assignment for a new cluster: partition p goes to the (p mod k)-th node, zones interleaved. */
export function initialAssignment(nodes: readonly NodeDef[], partitions: number): string[] {
  assert(nodes.length > 0, 'a cluster needs at least one node')
  log2(partitions)
  const order = interleaveZones(nodes)
  return Array.from({ length: partitions }, (_, p) => (order[p % order.length] as NodeDef).id)
}

/**
 * Reassign partitions for a new node set, moving as few as possible: every
 * node ends with floor(Q/k) or ceil(Q/k) partitions; partitions move only off
 * nodes above their share (or removed) and onto nodes below it.
 */
export function rebalanceAssignment(current: readonly string[], nodes: readonly NodeDef[]): string[] {
  const q = current.length
  const ids = interleaveZones(nodes).map((n) => n.id)
  const owned = new Map<string, number[]>(ids.map((id) => [id, []]))
  const free: number[] = []
  for (const [p, owner] of current.entries()) (owned.get(owner) ?? free).push(p)
  // Nodes already holding the most get the ceil shares, so fewer partitions move.
  const byLoad = [...ids].sort((a, b) => (owned.get(b)?.length ?? 0) - (owned.get(a)?.length ?? 0))
  const base = Math.floor(q / ids.length)
  const extra = q % ids.length
  const target = new Map(byLoad.map((id, i) => [id, base + (i < extra ? 1 : 0)]))
  for (const id of ids) {
    const mine = owned.get(id) as number[]
    const over = mine.length - (target.get(id) as number)
    if (over <= 0) continue
    // Give up partitions spread evenly over the ring rather than one contiguous run.
    const step = mine.length / over
    const leaving = new Set(Array.from({ length: over }, (_, j) => mine[Math.floor(j * step)] as number))
    free.push(...leaving)
    owned.set(
      id,
      mine.filter((p) => !leaving.has(p)),
    )
  }
  free.sort((a, b) => a - b)
  const next = [...current]
  let cursor = 0
  for (const p of free) {
    for (let tries = 0; tries < ids.length; tries++) {
      const id = ids[cursor % ids.length] as string
      cursor++
      const mine = owned.get(id) as number[]
      if (mine.length < (target.get(id) as number)) {
        mine.push(p)
        next[p] = id
        break
      }
    }
  }
  return next
}

/** Preference lists and partition math for one cluster definition. */
export class Ring {
  readonly partitions: number
  private readonly zoneOf = new Map<string, string>()
  private readonly zoneCount: number
  private readonly walks: string[][]
  private readonly lists = new Map<number, string[][]>()

  constructor(readonly cluster: ClusterDef) {
    this.partitions = cluster.partitions
    for (const n of cluster.nodes) this.zoneOf.set(n.id, n.zone ?? '')
    this.zoneCount = new Set(this.zoneOf.values()).size
    this.walks = Array.from({ length: this.partitions }, (_, p) => this.walk(p))
  }

  /** Distinct owners of p, p+1, p+2, ... in ring order. */
  private walk(p: number): string[] {
    const seen: string[] = []
    for (let i = 0; i < this.partitions && seen.length < this.zoneOf.size; i++) {
      const owner = this.cluster.assignment[(p + i) % this.partitions] as string
      if (!seen.includes(owner)) seen.push(owner)
    }
    return seen
  }

  /** Partition of a key. */
  partitionOf(key: Uint8Array): number {
    return partitionOfHash(keyHash(key), this.partitions)
  }

  /**
   * All nodes for partition p in the order replicas are chosen: the first n
   * are the primaries (a zone is repeated only once every zone has a replica),
   * the rest are fallbacks for hinted writes.
   */
  order(p: number, n: number): readonly string[] {
    let perN = this.lists.get(n)
    if (!perN) {
      perN = new Array<string[]>(this.partitions)
      this.lists.set(n, perN)
    }
    let list = perN[p]
    if (!list) {
      list = this.zoneOrder(this.walks[p] as string[], n)
      perN[p] = list
    }
    return list
  }

  private zoneOrder(walk: readonly string[], n: number): string[] {
    const chosen: string[] = []
    const zones = new Set<string>()
    const rest = [...walk]
    while (chosen.length < n && rest.length > 0) {
      const allZones = zones.size >= this.zoneCount
      const i = rest.findIndex((id) => allZones || !zones.has(this.zoneOf.get(id) as string))
      const [id] = rest.splice(Math.max(i, 0), 1) as [string]
      chosen.push(id)
      zones.add(this.zoneOf.get(id) as string)
      if (zones.size >= this.zoneCount) zones.clear()
    }
    return [...chosen, ...rest]
  }

  /** The n primary replicas of partition p. */
  primaries(p: number, n: number): readonly string[] {
    return this.order(p, n).slice(0, n)
  }

  /** True when node holds partition p as one of its n primaries. */
  holds(nodeId: string, p: number, n: number): boolean {
    return this.primaries(p, n).includes(nodeId)
  }
}
