import { type ClusterDef, type StoreDef, findStore, storeDef, validateCluster } from './cluster.js'
import { InvalidInputError } from './errors.js'

/** The fields `alterStore` may change: everything but the name and n (which moves replicas); undefined leaves one as it is. */
export type StoreSettings = { readonly [K in Exclude<keyof StoreDef, 'name' | 'n'>]?: StoreDef[K] | undefined }

/** Store changes wait for a membership change to end: its driver compares whole definitions. */
function requireNoMove(def: ClusterDef): void {
  if (def.move)
    throw new InvalidInputError(
      `plan ${def.move.planId} is in progress (step ${def.move.step} of ${def.move.steps}): finish it (kvorum cluster rebalance) or abort it (kvorum cluster abort) before changing stores`,
    )
}

/** The next version of `def` with `stores`; checked as a node would check it. */
function withStores(def: ClusterDef, stores: readonly StoreDef[]): ClusterDef {
  return validateCluster({ ...def, version: def.version + 1, stores })
}

/** `def` with one more store. Nothing moves: every node already holds every partition's rows for it (none). */
export function createStore(def: ClusterDef, partial: Partial<StoreDef> & { name: string }): ClusterDef {
  requireNoMove(def)
  if (def.stores.some((s) => s.name === partial.name)) {
    throw new InvalidInputError(`store ${partial.name} already exists: change its settings with kvorum store alter`)
  }
  return withStores(def, [...def.stores, storeDef(partial)])
}

/**
 * `def` with a store's settings changed. Quorums, limits, the conflict mode
 * and the tombstone grace apply from the next request on; n is refused
 * here, because it changes every partition's replica set: planReplicaChange
 * and a rebalance change it.
 */
export function alterStore(def: ClusterDef, name: string, settings: StoreSettings & { readonly n?: number | undefined }): ClusterDef {
  requireNoMove(def)
  const current = findStore(def, name)
  if ('name' in settings) throw new InvalidInputError('a store cannot be renamed')
  if (settings.n !== undefined && settings.n !== current.n) {
    throw new InvalidInputError(
      `store ${name}: n is ${current.n}; changing it moves every partition's replicas, which a rebalance does: kvorum store alter ${name}:n=N (or planReplicaChange and kv.rebalance)`,
    )
  }
  const given = Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined))
  const next = { ...current, ...given }
  return withStores(
    def,
    def.stores.map((s) => (s.name === name ? next : s)),
  )
}

/**
 * Why a node must refuse `next` after `held`, or null. A definition may add
 * stores and change their settings, but not drop a store (its rows would be
 * orphaned) or change its n outside the switch of a plan that changes it
 * (replicas would drop rows no other node has yet).
 */
export function storeTransitionError(held: ClusterDef, next: ClusterDef): string | null {
  for (const before of held.stores) {
    const after = next.stores.find((s) => s.name === before.name)
    if (!after) return `store ${before.name} is missing from cluster version ${next.version}: stores cannot be removed`
    // A plan that changes n sets it at its switch to the new replicas (use-new), and only then.
    const planned = held.move?.storeN?.[before.name] === after.n && held.move.stage === 'read-new' && next.move?.stage === 'use-new'
    if (after.n !== before.n && !planned)
      return `store ${before.name}: n changes from ${before.n} to ${after.n}, which moves replicas; only a rebalance changes n (kvorum store alter NAME:n=N runs one)`
  }
  return null
}
