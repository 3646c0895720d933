import { type ClusterDef, type StoreDef, findStore, storeDef, validateCluster, withoutZeroTtl } from './cluster.js'
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
  const existing = def.stores.find((s) => s.name === partial.name)
  // Run again after a failure that left the store created everywhere: nothing more to do.
  if (existing && JSON.stringify(existing) === JSON.stringify(storeDef(partial))) return def
  if (existing) {
    throw new InvalidInputError(`store ${partial.name} already exists with other settings: change them with kvorum store alter`)
  }
  return withStores(def, [...def.stores, storeDef(partial)])
}

/**
 * `def` with a store's settings changed. Quorums, limits, the conflict mode,
 * the tombstone grace and the ttl apply from the next request on (a new ttl
 * to puts from then on: a version keeps the expiry it was written with); n is refused
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
  // ttlMs=0 removes the store's expiry (puts written before keep theirs).
  const next = withoutZeroTtl({ ...current, ...given })
  return withStores(
    def,
    def.stores.map((s) => (s.name === name ? next : s)),
  )
}

/**
 * Why a node must refuse `next` after `held`, or null. A definition may add
 * stores and change their settings, but not drop a store (its rows would be
 * orphaned) or change its n other than through a plan that changes it
 * (replicas would drop rows no other node has yet). A node may skip versions
 * (it was down, or lost its last commits): a later definition of the plan
 * that carries the new n, or one past its end, is accepted too.
 */
export function storeTransitionError(held: ClusterDef, next: ClusterDef): string | null {
  for (const before of held.stores) {
    const after = next.stores.find((s) => s.name === before.name)
    if (!after) return `store ${before.name} is missing from cluster version ${next.version}: stores cannot be removed`
    if (after.n !== before.n && !throughPlan(held, next, before.name, after.n))
      return `store ${before.name}: n changes from ${before.n} to ${after.n}, which moves replicas; only a rebalance changes n (kvorum store alter NAME:n=N runs one)`
  }
  return null
}

/**
 * True when `next` gives `store` the n a plan set for it: `held` is inside
 * that plan (and `next` is later in it, or past its end), or `next` records
 * that every partition's replica sets changed after the version `held` is
 * (as a plan's definitions do, and a hand-edited one does not).
 */
function throughPlan(held: ClusterDef, next: ClusterDef, store: string, n: number): boolean {
  const plan = held.move
  // An abort of the plan keeps the old n: one that carries the new n is not the plan's.
  if (plan && next.abortedPlan === plan.planId) return false
  if (plan?.storeN?.[store] === n && (next.move === undefined || next.move.planId === plan.planId)) return true
  return next.placement?.every((v) => v > held.version) === true
}

/** The fields two settings of a store differ in, as `field=a|b`. */
function describeDiff(a: StoreDef, b: StoreDef): string {
  // Both sides' fields: an optional one (ttlMs) may be set on one only.
  return ([...new Set([...Object.keys(a), ...Object.keys(b)])] as (keyof StoreDef)[])
    .filter((k) => a[k] !== b[k])
    .map((k) => `${k}=${String(a[k])}|${String(b[k])}`)
    .join(', ')
}

/**
 * One definition from several that nodes hold at the same version after two
 * store changes raced (each node took whichever came first): the same
 * definition with the union of their stores, so a next version built on it
 * drops none. Null when they differ in more than their stores (or a move is
 * in progress): that is not a store race, and the driver reports a conflict.
 * Throws when one store has different settings on different nodes.
 */
export function unionOfStores(defs: readonly ClusterDef[]): ClusterDef | null {
  const [first, ...rest] = defs
  if (!first) return null
  const shape = (d: ClusterDef) => JSON.stringify({ ...d, stores: undefined })
  if (first.move || rest.some((d) => d.move || d.version !== first.version || shape(d) !== shape(first))) return null
  const byName = new Map<string, StoreDef>()
  for (const d of defs) {
    for (const s of d.stores) {
      const seen = byName.get(s.name)
      // The same store with other settings (an alter raced, or one store created twice): which is
      // newer cannot be told from the definitions, so nothing is guessed.
      if (seen && JSON.stringify(seen) !== JSON.stringify(s))
        throw new InvalidInputError(
          `store ${s.name} differs between nodes after two store commands ran at once (${describeDiff(seen, s)}): run kvorum store alter ${s.name}:field=value with the settings you want on every node holding the other, or wipe and re-sync those nodes; kvorum cluster status shows which nodes hold which version`,
        )
      byName.set(s.name, s)
    }
  }
  const names = [...first.stores.map((s) => s.name), ...[...byName.keys()].filter((n) => !first.stores.some((s) => s.name === n)).sort()]
  return { ...first, stores: names.map((n) => byName.get(n) as StoreDef) }
}
