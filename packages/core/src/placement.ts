import type { ClusterDef, MoveStage, StoreDef } from './cluster.js'
import { Ring } from './ring.js'

/** A store as placement needs it: its name (its n is looked up in the definition) and its n. */
export type StoreRef = Pick<StoreDef, 'name' | 'n'>

/**
 * Who serves partition q of a store under a cluster definition, move
 * included (MEMBERSHIP.md): O are the store's primaries under `assignment`,
 * N those under the move's `next` with the move's n for the store (a change
 * of n moves replicas as a change of owners does). While a move writes both,
 * writes go to O ∪ N and need a quorum in each; reads and coordinators are O
 * until `read-new`, then N. Outside a move O = N and every set is the
 * primaries.
 */
export class Placement {
  /** Primaries under `assignment` (O). */
  readonly ring: Ring
  /** Primaries under the move's `next` (N); the same ring outside a move. */
  readonly nextRing: Ring
  readonly stage: MoveStage | null
  private readonly dual: boolean

  constructor(readonly cluster: ClusterDef) {
    this.ring = new Ring(cluster)
    const move = cluster.move
    this.stage = move?.stage ?? null
    this.dual = move !== undefined && (move.stage === 'write-both' || move.stage === 'read-new')
    this.nextRing = move && this.dual ? new Ring({ ...cluster, assignment: move.next }) : this.ring
  }

  /** The store's n under `assignment`: the definition's own (the caller's when it names no store of it). */
  private oldN(store: StoreRef): number {
    return this.cluster.stores.find((s) => s.name === store.name)?.n ?? store.n
  }

  /** The store's n under the move's `next`. */
  private newN(store: StoreRef): number {
    return (this.dual ? this.cluster.move?.storeN?.[store.name] : undefined) ?? this.oldN(store)
  }

  private old(q: number, store: StoreRef): readonly string[] {
    return this.ring.primaries(q, this.oldN(store))
  }

  private next(q: number, store: StoreRef): readonly string[] {
    return this.nextRing.primaries(q, this.newN(store))
  }

  get partitions(): number {
    return this.ring.partitions
  }

  /** True while q's replica sets differ between O and N (its data is on its way). */
  moving(q: number, store: StoreRef): boolean {
    return this.dual && !sameMembers(this.old(q, store), this.next(q, store))
  }

  /** The replicas a read of q asks, in preference order. */
  readers(q: number, store: StoreRef): readonly string[] {
    return this.stage === 'read-new' ? this.next(q, store) : this.old(q, store)
  }

  /** The replicas that may coordinate a write of q (assign its dot), in preference order. */
  coordinators(q: number, store: StoreRef): readonly string[] {
    return this.readers(q, store)
  }

  /**
   * The replica sets a write of q must reach a quorum in: [O] outside a
   * move, [O, N] while it writes both (the set that reads come from first).
   */
  writeSets(q: number, store: StoreRef): readonly (readonly string[])[] {
    const o = this.old(q, store)
    if (!this.moving(q, store)) return [o]
    const next = this.next(q, store)
    return this.stage === 'read-new' ? [next, o] : [o, next]
  }

  /** Every node a write of q goes to: the union of the write sets, readers first. */
  writers(q: number, store: StoreRef): string[] {
    const out: string[] = []
    for (const set of this.writeSets(q, store)) for (const id of set) if (!out.includes(id)) out.push(id)
    return out
  }

  /** Nodes outside the write sets in ring order: where hints go. */
  fallbacks(q: number, store: StoreRef): string[] {
    const writers = new Set(this.writers(q, store))
    return this.ring.order(q, Math.max(this.oldN(store), this.newN(store))).filter((id) => !writers.has(id))
  }

  /** May `node` answer reads of q? */
  canRead(node: string, q: number, store: StoreRef): boolean {
    return this.readers(q, store).includes(node)
  }

  /** May `node` coordinate writes of q? */
  canCoordinate(node: string, q: number, store: StoreRef): boolean {
    return this.coordinators(q, store).includes(node)
  }

  /** May `node` take merges of q (it is in a write set)? */
  canMerge(node: string, q: number, store: StoreRef): boolean {
    return this.writeSets(q, store).some((set) => set.includes(node))
  }
}

function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x))
}
