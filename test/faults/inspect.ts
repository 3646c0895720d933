import { createHash } from 'node:crypto'
import { type SiblingSet, fromUtf8, resolveSets, sameSet, toHex, utf8 } from '@kvorum/core'
import { type ORSet, orSet } from '@kvorum/client'
import type { FaultHarness } from './harness.js'
import { STORES, type Workload } from './protocol.js'

const T = { timeoutMs: 10_000 }
const BATCH = 256
const STORE_OF: Record<Workload, string> = { set: STORES.carts, lww: STORES.lww, register: STORES.registers }

/** What the replicas hold for one workload's keys after convergence. */
export interface FinalRead {
  /** Key to its merged sibling set, read from every primary. */
  readonly sets: Map<string, SiblingSet>
  /** Keys whose primaries do not hold identical sets (0 once converged). */
  readonly divergent: number
}

/** Read every key the workload touched from each of its primaries directly. */
export async function finalRead(h: FaultHarness, workload: Workload): Promise<FinalRead> {
  const store = h.operator.cluster.stores.find((s) => s.name === STORE_OF[workload])
  if (!store) throw new Error(`assertion failed: no store ${STORE_OF[workload]}`)
  const keys = h.history.keys(workload)
  const replies = new Map<string, SiblingSet[]>(keys.map((k) => [k, []]))
  for (const node of h.members) {
    const mine = keys.filter((k) => h.operator.ring.primaries(h.operator.ring.partitionOf(utf8(k)), store.n).includes(node.id))
    for (let i = 0; i < mine.length; i += BATCH) {
      const chunk = mine.slice(i, i + BATCH)
      const res = await h.cluster.transport.node(node).get(T, store.name, chunk.map(utf8))
      res.forEach((r, j) => {
        if (!r.ok) throw new Error(`final read of ${chunk[j]} from ${node.id}: ${r.error.code} ${r.error.message}`)
        replies.get(chunk[j] as string)?.push(r.value)
      })
    }
  }
  const sets = new Map<string, SiblingSet>()
  let divergent = 0
  for (const [key, got] of replies) {
    const merged = resolveSets(store.conflict, ...got)
    if (got.some((s) => !sameSet(s, merged))) divergent++
    sets.set(key, merged)
  }
  return { sets, divergent }
}

/** Carts: the elements of every cart, merging siblings as a reader would. */
export function cartElements(read: FinalRead): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>()
  for (const [key, set] of read.sets) {
    const values = set.filter((v) => v.value !== null).map((v) => JSON.parse(fromUtf8(v.value as Uint8Array)) as ORSet<string>)
    out.set(key, new Set(Object.values(orSet.merge(values).adds)))
  }
  return out
}

/** Registers: the live values of every key. */
export function registerValues(read: FinalRead): Map<string, string[]> {
  return new Map([...read.sets].map(([key, set]) => [key, set.filter((v) => v.value !== null).map((v) => fromUtf8(v.value as Uint8Array))]))
}

/** What a scan of every replica found about dots. */
export interface DotAudit {
  readonly versions: number
  /** Dots that name two different versions: a reissued dot (Riak's kv679). */
  readonly reused: readonly string[]
  /** Dots whose actor is no incarnation any node reported. */
  readonly unknownActors: readonly string[]
}

/**
 * Scan every replica of every store: each dot must name exactly one version
 * (store, key, timestamp, value) wherever it is found, and its actor must be
 * an incarnation some node process reported (at start, or later when a
 * membership change made it drop partitions).
 */
export async function auditDots(h: FaultHarness): Promise<DotAudit> {
  const seen = new Map<string, string>()
  const reused = new Set<string>()
  const unknown = new Set<string>()
  const actors = new Set([...h.incarnations, ...h.adopted])
  let versions = 0
  for (const store of h.operator.cluster.stores) {
    for (const node of h.members) {
      for (let p = 0; p < h.operator.cluster.partitions; p++) {
        let after: Uint8Array | undefined
        for (let page = 0; page < 10_000; page++) {
          const res = await h.cluster.transport.node(node).scan(T, store.name, { partition: p, limit: 1000, ...(after ? { after } : {}) })
          for (const item of res.items) {
            for (const v of item.siblings) {
              versions++
              const dot = `${v.dot.actor}:${v.dot.counter}`
              const what = `${store.name}|${toHex(item.key)}|${v.timestamp}|${v.value === null ? 'tombstone' : createHash('sha1').update(v.value).digest('hex')}`
              const before = seen.get(dot)
              if (before === undefined) seen.set(dot, what)
              else if (before !== what) reused.add(dot)
              if (!actors.has(v.dot.actor)) unknown.add(v.dot.actor)
            }
          }
          if (!res.next) break
          after = res.next
        }
      }
    }
  }
  return { versions, reused: [...reused], unknownActors: [...unknown] }
}
