import { type ConflictMode, type SiblingSet, resolveSets, sameSet } from '@kvorum/core'

/** What each replica holds of one key (heads: clocks without values). */
export interface KeyHeads {
  readonly key: Uint8Array
  readonly sets: ReadonlyMap<string, SiblingSet>
}

/** One key to repair: the replicas that lack part of the merged set. */
export interface KeyRepair {
  readonly key: Uint8Array
  readonly hex: string
  readonly lacking: string[]
}

/** The repairs of a set of keys, and from which replica to fetch which keys' full versions. */
export interface RepairPlan {
  readonly repairs: KeyRepair[]
  /** Source replica → keys to fetch from it; between them the sources hold every dot of each merged set. */
  readonly fetch: Map<string, Uint8Array[]>
}

/**
 * Plan a repair from the replicas' heads: for each key, the merged clock,
 * which replicas lack it, and a few sources that hold every missing dot.
 * A plain function: no I/O.
 */
export function planRepairs(conflict: ConflictMode, replicas: readonly string[], keys: ReadonlyMap<string, KeyHeads>): RepairPlan {
  const repairs: KeyRepair[] = []
  const fetch = new Map<string, Uint8Array[]>()
  for (const [hex, { key, sets }] of keys) {
    const merged = resolveSets(conflict, ...replicas.map((id) => sets.get(id) ?? []))
    const lacking = replicas.filter((id) => !sameSet(sets.get(id) ?? [], merged))
    if (lacking.length === 0) continue
    repairs.push({ key, hex, lacking })
    for (const source of sources(merged, replicas, sets)) {
      const list = fetch.get(source)
      if (list) list.push(key)
      else fetch.set(source, [key])
    }
  }
  return { repairs, fetch }
}

const dotId = (v: { dot: { actor: string; counter: number } }) => `${v.dot.actor}:${v.dot.counter}`

/** A few replicas that between them hold every dot of the merged set (greedy). */
export function sources(merged: SiblingSet, replicas: readonly string[], sets: ReadonlyMap<string, SiblingSet>): string[] {
  const need = new Set(merged.map(dotId))
  const out: string[] = []
  while (need.size > 0) {
    let best = ''
    let bestCount = 0
    for (const id of replicas) {
      const count = (sets.get(id) ?? []).filter((v) => need.has(dotId(v))).length
      if (count > bestCount) {
        best = id
        bestCount = count
      }
    }
    if (!best) break
    out.push(best)
    for (const v of sets.get(best) ?? []) need.delete(dotId(v))
  }
  return out
}
