import { type ClusterDef, type MoveStage, Placement } from '@kvorum/core'

/** The ring as the page draws it: small integers into `nodes` instead of ids, so 1,024 partitions stay a few kB. */
export interface RingView {
  readonly version: number
  readonly partitions: number
  readonly nodes: readonly { readonly id: string; readonly url: string; readonly zone?: string }[]
  /** Owner of each partition (index into nodes). */
  readonly owner: readonly number[]
  /** The store whose preference lists are shown (the definition's first), and its n. */
  readonly store: { readonly name: string; readonly n: number } | null
  /** Per partition, the replicas a read asks, in preference order (indexes into nodes). */
  readonly preference: readonly (readonly number[])[]
  /** A membership change in progress: its step and stage, and each moving partition's next owner. */
  readonly move: {
    readonly planId: string
    readonly step: number
    readonly steps: number
    readonly stage: MoveStage
    /** Partitions whose replicas this step moves, with their next owner (index into nodes). */
    readonly moving: readonly { readonly partition: number; readonly to: number }[]
  } | null
}

/** The ring of a definition, with preference lists of its first store and the partitions a move is carrying. */
export function ringView(def: ClusterDef): RingView {
  const index = new Map(def.nodes.map((n, i) => [n.id, i]))
  const at = (id: string) => index.get(id) ?? -1
  const placement = new Placement(def)
  const first = def.stores[0]
  const store = first ? { name: first.name, n: first.n } : null
  const preference = def.assignment.map((_, q) => (store ? placement.readers(q, store).map(at) : []))
  let move: RingView['move'] = null
  if (def.move) {
    const moving: { partition: number; to: number }[] = []
    def.move.next.forEach((to, q) => {
      if (to !== def.assignment[q] || (store && placement.moving(q, store))) moving.push({ partition: q, to: at(to) })
    })
    move = { planId: def.move.planId, step: def.move.step, steps: def.move.steps, stage: def.move.stage, moving }
  }
  return {
    version: def.version,
    partitions: def.partitions,
    nodes: def.nodes.map((n) => (n.zone ? { id: n.id, url: n.url, zone: n.zone } : { id: n.id, url: n.url })),
    owner: def.assignment.map(at),
    store,
    preference,
    move,
  }
}
