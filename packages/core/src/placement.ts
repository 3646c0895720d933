import type { ClusterDef, MoveStage } from './cluster.js'
import { Ring } from './ring.js'

/**
 * Who serves partition q under a cluster definition, move included
 * (MEMBERSHIP.md): O are the primaries under `assignment`, N those under the
 * move's `next`. While a move writes both, writes go to O ∪ N and need a
 * quorum in each; reads and coordinators are O until `read-new`, then N. Outside
 * a move O = N and every set is the primaries.
 */
export class Placement {
  /** Primaries under `assignment` (O). */
  readonly ring: Ring
  /** Primaries under the move's `next` (N); the same ring outside a move. */
  readonly nextRing: Ring
  readonly stage: MoveStage | null

  constructor(readonly cluster: ClusterDef) {
    this.ring = new Ring(cluster)
    const move = cluster.move
    this.stage = move?.stage ?? null
    this.nextRing = move && (move.stage === 'write-both' || move.stage === 'read-new') ? new Ring({ ...cluster, assignment: move.next }) : this.ring
  }

  get partitions(): number {
    return this.ring.partitions
  }

  /** True while q's replica sets differ between O and N (its data is on its way). */
  moving(q: number, n: number): boolean {
    return this.nextRing !== this.ring && !sameMembers(this.ring.primaries(q, n), this.nextRing.primaries(q, n))
  }

  /** The replicas a read of q asks, in preference order. */
  readers(q: number, n: number): readonly string[] {
    return this.stage === 'read-new' ? this.nextRing.primaries(q, n) : this.ring.primaries(q, n)
  }

  /** The replicas that may coordinate a write of q (assign its dot), in preference order. */
  coordinators(q: number, n: number): readonly string[] {
    return this.readers(q, n)
  }

  /**
   * The replica sets a write of q must reach a quorum in: [O] outside a
   * move, [O, N] while it writes both (the set that reads come from first).
   */
  writeSets(q: number, n: number): readonly (readonly string[])[] {
    const o = this.ring.primaries(q, n)
    if (!this.moving(q, n)) return [o]
    const next = this.nextRing.primaries(q, n)
    return this.stage === 'read-new' ? [next, o] : [o, next]
  }

  /** Every node a write of q goes to: the union of the write sets, readers first. */
  writers(q: number, n: number): string[] {
    const out: string[] = []
    for (const set of this.writeSets(q, n)) for (const id of set) if (!out.includes(id)) out.push(id)
    return out
  }

  /** Nodes outside the write sets in ring order: where hints go. */
  fallbacks(q: number, n: number): string[] {
    const writers = new Set(this.writers(q, n))
    return this.ring.order(q, n).filter((id) => !writers.has(id))
  }

  /** May `node` answer reads of q? */
  canRead(node: string, q: number, n: number): boolean {
    return this.readers(q, n).includes(node)
  }

  /** May `node` coordinate writes of q? */
  canCoordinate(node: string, q: number, n: number): boolean {
    return this.coordinators(q, n).includes(node)
  }

  /** May `node` take merges of q (it is in a write set)? */
  canMerge(node: string, q: number, n: number): boolean {
    return this.writeSets(q, n).some((set) => set.includes(node))
  }
}

function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x))
}
