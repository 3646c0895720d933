import { type SiblingSet, covers, isGone, mergeSets, toHex, utf8 } from '@kvorum/core'
import { type Kvorum, orSet } from '@kvorum/client'
import type { StorageEngine } from '@kvorum/storage'
import type { SimCluster } from './cluster.js'
import type { SeedConfig } from './config.js'
import type { Trace } from './trace.js'
import { type Check, checkSet } from '../support/set-checker.js'
import { type Cart, CART_WORKLOAD, type Doc, type WorkloadLog } from './workload.js'

/** What the final checks found; every list must be empty, and the set check must find nothing lost or unexpected. */
export interface CheckReport {
  /** The set checker's verdict on the cart adds against the final carts, read with r = n. */
  readonly set: Check
  /** Live versions whose dot an acknowledged delete had covered: `key dot`. */
  readonly resurrected: string[]
  /** Keys whose primary replicas do not hold the same versions. */
  readonly divergent: string[]
}

/**
 * Each key's replicas as text (`node: versions | ...`), to compare the
 * cluster before and after an import; with `goneAtMs`, a set that reads as
 * absent then prints as no set (as `check` compares replicas under skew).
 */
export async function replicaPrints(cluster: SimCluster, kv: Kvorum, config: SeedConfig, trace: Trace, goneAtMs?: number): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const key of [...config.cartKeys, ...config.docKeys]) {
    const sets = await replicaSets(cluster, kv, config, key)
    const shown = (set: SiblingSet) => (goneAtMs !== undefined && isGone(set, goneAtMs) ? [] : set)
    out.set(key, [...sets].map(([node, set]) => `${node}: ${fingerprint(shown(set), trace)}`).join(' | '))
  }
  return out
}

/** A version's identity and content, to compare replicas exactly. */
function fingerprint(set: SiblingSet, trace: Trace): string {
  return set
    .map((v) => `${trace.name(v.dot.actor)}:${v.dot.counter}=${v.value === null ? 'tombstone' : toHex(v.value).slice(0, 16)}`)
    .sort()
    .join(' ')
}

/** The id a document version carries. */
function docId(value: Uint8Array): string {
  return (JSON.parse(Buffer.from(value).toString('utf8')) as Doc).id
}

/** The store's n at the end (a membership change may have changed it): the checker's client holds the final definition. */
function finalN(kv: Kvorum, config: SeedConfig): number {
  return kv.cluster.stores.find((s) => s.name === config.store.name)?.n ?? config.store.n
}

async function replicaSets(cluster: SimCluster, kv: Kvorum, config: SeedConfig, key: string): Promise<Map<string, SiblingSet>> {
  const bytes = utf8(key)
  const out = new Map<string, SiblingSet>()
  for (const node of kv.ring.primaries(kv.ring.partitionOf(bytes), finalN(kv, config))) {
    const [res] = await (cluster.engines.get(node) as StorageEngine).get(config.store.name, [bytes])
    if (!res?.ok) throw new Error(`assertion failed: ${node} could not read ${key}: ${res ? res.error.message : 'no answer'}`)
    out.set(node, res.value)
  }
  return out
}

/**
 * After healing, handoff and a repair pass: (1) every acknowledged add is in
 * its cart, read with r = n; (2) no version an acknowledged delete covered is
 * live again (nor any an acknowledged expiring overwrite covered); (3) every
 * key's primaries hold identical versions. With `goneAtMs` (true wall-clock
 * time, under skewed clocks) a set that reads as absent then counts as no
 * set: each node reaps on its own clock, so one set back holds it longer.
 */
export async function check(cluster: SimCluster, kv: Kvorum, config: SeedConfig, history: WorkloadLog, trace: Trace, goneAtMs?: number): Promise<CheckReport> {
  const resurrected: string[] = []
  const divergent: string[] = []
  for (const key of [...config.cartKeys, ...config.docKeys]) {
    const sets = await replicaSets(cluster, kv, config, key)
    const prints = [...sets].map(([node, set]) => `${node}: ${fingerprint(set, trace)}`)
    const compared = [...sets.values()].map((s) => (goneAtMs !== undefined && isGone(s, goneAtMs) ? [] : s))
    if (new Set(compared.map((s) => fingerprint(s, trace))).size > 1) {
      divergent.push(key)
      trace.event(`divergent ${key}: ${prints.join(' | ')}`)
    } else {
      trace.event(`replicas of ${key}: ${prints[0] ?? 'none'}`)
    }
    if (!config.docKeys.includes(key)) continue
    const merged = mergeSets(...sets.values())
    for (const v of merged) {
      if (v.value === null) continue
      const by = history.deletes.find((d) => d.key === key && covers(d.covered, v.dot))
      if (by) resurrected.push(`${key} ${trace.name(v.dot.actor)}:${v.dot.counter} (deleted by ${by.by})`)
      // A deleted document written again under a new dot (an import that re-stamps what it restores).
      const id = docId(v.value)
      const again = by ? undefined : history.deletes.find((d) => d.key === key && d.values.includes(id))
      if (again) resurrected.push(`${key} ${id} again as ${trace.name(v.dot.actor)}:${v.dot.counter} (deleted by ${again.by})`)
    }
  }
  const carts = kv.store<Cart>(config.store.name, { codec: 'json' })
  const final = new Map<string, ReadonlySet<string>>()
  for (const key of config.cartKeys) {
    const read = await carts.get(key, { r: finalN(kv, config) })
    const cart = orSet.merge(read.values)
    final.set(key, new Set(Object.keys(cart.adds)))
    trace.event(`final ${key}: ${Object.keys(cart.adds).length} tags in ${read.siblings} siblings`)
  }
  return { set: checkSet(history.ops.of(CART_WORKLOAD), final), resurrected, divergent }
}
