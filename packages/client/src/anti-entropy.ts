import { type KeySet, type SiblingSet, type StoreDef, HASH_BYTES, assert, diffHashes, resolveSets, toHex } from '@kvorum/core'
import { checkAborted } from './call.js'
import { differingSegments } from './merkle-walk.js'
import { RateLimiter } from './rate-limit.js'
import { blocksReap, hintedTargets, reapPartition } from './reaper.js'
import { type KeyHeads, planRepairs } from './repair-plan.js'
import type { Runtime } from './runtime.js'
import type { RequestOptions } from './transport.js'

/** Options of a repair pass. */
export interface RepairOptions {
  /** Only this store. Default every store. */
  readonly store?: string | undefined
  /** Only these partitions. Default all. */
  readonly partitions?: readonly number[] | undefined
  /** Partitions compared at once. Default 2. */
  readonly concurrency?: number | undefined
  /** Keys repaired per second at most, so foreground traffic keeps its latency. Default 10,000. */
  readonly maxKeysPerSecond?: number | undefined
  /** Reap tombstones that every primary holds past the store's grace period. Default true. */
  readonly reapTombstones?: boolean | undefined
  /** Called after each partition. */
  readonly onProgress?: ((progress: RepairReport) => void) | undefined
  /**
   * Count a partition as skipped unless every replica a write goes to (less
   * these dead ones) answered: the copy of a membership change must reach
   * every joiner, not only two replicas. Default: two replicas are enough.
   */
  readonly requireReplicasExcept?: ReadonlySet<string> | undefined
  /** Stops the pass: `repair()` rejects at once with KV_ABORTED, and no further partition is started. Default none. */
  readonly signal?: AbortSignal | undefined
}

/** The defaults of RepairOptions. */
export const REPAIR_DEFAULTS = { concurrency: 2, maxKeysPerSecond: 10_000, reapTombstones: true } as const

/** What a pass did. */
export interface RepairReport {
  partitionsTotal: number
  partitionsDone: number
  /** Partitions with fewer than two replicas reachable, left for the next pass. */
  partitionsSkipped: number
  /** Partitions whose replicas' Merkle roots differed. */
  partitionsDiffering: number
  keysCompared: number
  keysRepaired: number
  replicaWrites: number
  /** Repair writes a replica refused (it answered with an item error). */
  replicaWriteFailures: number
  /** Keys found different whose full versions could not be fetched this pass. */
  keysUnrepaired: number
  tombstonesReaped: number
  /** Request and answer bodies as the transport sent and received them. */
  bytesExchanged: number
  /** The copy rate allowed now, keys/s: maxKeysPerSecond, or less while nodes answer slowly. */
  keysPerSecondLimit: number
  durationMs: number
}

/** Keys per scan page. */
const SCAN_PAGE = 1000
/** Scan pages read per replica and partition at most (10 million keys). */
const MAX_SCAN_PAGES = 10_000
/** Keys per get or merge request of a repair. */
const WRITE_BATCH = 256
/** A repair request may take longer than a data-path one: it carries up to 256 full sets. */
const MIN_REPAIR_REQUEST_MS = 5000

/**
 * Merkle anti-entropy, driven by the SDK: for each partition, compare the
 * replicas' roots, then branches, then leaves (merkle-walk.ts); list keys and
 * clocks only under differing leaves; plan which replicas lack what
 * (repair-plan.ts); fetch full versions only for those keys; write the
 * merged sets where they are missing; then reap tombstones that are safe to
 * reap (reaper.ts). Cost follows the number of differences, not the data.
 */
export class AntiEntropy {
  constructor(private readonly rt: Runtime) {}

  private requireExcept: ReadonlySet<string> | undefined

  async repair(options: RepairOptions = {}): Promise<RepairReport> {
    this.requireExcept = options.requireReplicasExcept
    const { view, time } = this.rt
    const started = time.monotonicMs()
    const stores = options.store ? [view.cluster.stores.find((s) => s.name === options.store)] : view.cluster.stores
    const parts = options.partitions ?? Array.from({ length: view.cluster.partitions }, (_, p) => p)
    const report: RepairReport = {
      partitionsTotal: parts.length * stores.length,
      partitionsDone: 0,
      partitionsSkipped: 0,
      partitionsDiffering: 0,
      keysCompared: 0,
      keysRepaired: 0,
      replicaWrites: 0,
      replicaWriteFailures: 0,
      keysUnrepaired: 0,
      tombstonesReaped: 0,
      bytesExchanged: 0,
      keysPerSecondLimit: options.maxKeysPerSecond ?? REPAIR_DEFAULTS.maxKeysPerSecond,
      durationMs: 0,
    }
    const t: RequestOptions = {
      timeoutMs: Math.max(this.rt.settings.requestTimeoutMs, MIN_REPAIR_REQUEST_MS),
      onBytes: (sent, received) => {
        report.bytesExchanged += sent + received
      },
    }
    const limiter = new RateLimiter(options.maxKeysPerSecond ?? REPAIR_DEFAULTS.maxKeysPerSecond, time)
    const hinted = (options.reapTombstones ?? REPAIR_DEFAULTS.reapTombstones) ? await hintedTargets(view, t) : null
    for (const store of stores) {
      checkAborted(options.signal, 'repair')
      assert(store, `store ${options.store} is in the cluster definition`)
      const roots = await this.roots(t, store)
      const queue = [...parts]
      const worker = async () => {
        for (let p = queue.shift(); p !== undefined && !options.signal?.aborted; p = queue.shift()) {
          await this.partition(t, store, p, roots, report, limiter, hinted)
          report.partitionsDone++
          report.durationMs = time.monotonicMs() - started
          options.onProgress?.({ ...report })
        }
      }
      await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? REPAIR_DEFAULTS.concurrency) }, worker))
    }
    checkAborted(options.signal, 'repair')
    report.durationMs = time.monotonicMs() - started
    return report
  }

  private async roots(t: RequestOptions, store: StoreDef): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>()
    await Promise.all(
      this.rt.view.cluster.nodes.map(async (node) => {
        try {
          out.set(node.id, await this.rt.view.nodeClient(node.id).merkleRoots(t, store.name))
        } catch {
          // unreachable: its partitions are repaired among the others, or skipped
        }
      }),
    )
    return out
  }

  private async partition(
    t: RequestOptions,
    store: StoreDef,
    p: number,
    roots: Map<string, Uint8Array>,
    report: RepairReport,
    limiter: RateLimiter,
    hinted: Set<string> | null,
  ): Promise<void> {
    // During a move, every replica a write goes to (old and new) is compared: that is the copy.
    const placement = this.rt.view.placement
    const primaries = placement.writers(p, store)
    const replicas = primaries.filter((id) => roots.has(id))
    if (replicas.length < 2) {
      if (primaries.length > 1) report.partitionsSkipped++
      return
    }
    const required = this.requireExcept
    if (required && replicas.length < primaries.filter((id) => !required.has(id)).length) report.partitionsSkipped++
    const rootOf = (id: string) => (roots.get(id) as Uint8Array).subarray(p * HASH_BYTES, (p + 1) * HASH_BYTES)
    if (replicas.some((id) => diffHashes(rootOf(id), rootOf(replicas[0] as string)).length > 0)) {
      report.partitionsDiffering++
      const segments = await differingSegments(this.rt.view, t, store, p, replicas)
      if (segments.length > 0) await this.repairSegments(t, store, p, replicas, segments, report, limiter)
    }
    // No tombstone is reaped while the cluster is moving (MEMBERSHIP rule 2).
    if (hinted && !this.rt.view.cluster.move && replicas.length === primaries.length && !blocksReap(hinted)) {
      // Await first, then add: \`x += await y\` reads x before the await, and the other workers' counts would be lost.
      const reaped = await reapPartition(this.rt.view, t, store, p, replicas, this.rt.time.now())
      report.tombstonesReaped += reaped
    }
  }

  /** Keys and clocks under the segments, per replica. */
  private async heads(t: RequestOptions, store: StoreDef, p: number, replicas: string[], segments: number[]): Promise<Map<string, KeyHeads>> {
    const keys = new Map<string, { key: Uint8Array; sets: Map<string, SiblingSet> }>()
    await Promise.all(
      replicas.map(async (id) => {
        let after: Uint8Array | undefined
        for (let page = 0; page < MAX_SCAN_PAGES; page++) {
          const res = await this.rt.view
            .nodeClient(id)
            .scan(t, store.name, { partition: p, segments, limit: SCAN_PAGE, headsOnly: true, ...(after ? { after } : {}) })
          for (const item of res.items) {
            const hex = toHex(item.key)
            const entry = keys.get(hex) ?? { key: item.key, sets: new Map<string, SiblingSet>() }
            entry.sets.set(id, item.siblings)
            keys.set(hex, entry)
          }
          if (!res.next) break
          after = res.next
        }
      }),
    )
    return keys
  }

  private async repairSegments(
    t: RequestOptions,
    store: StoreDef,
    p: number,
    replicas: string[],
    segments: number[],
    report: RepairReport,
    limiter: RateLimiter,
  ): Promise<void> {
    const keys = await this.heads(t, store, p, replicas, segments)
    report.keysCompared += keys.size
    const plan = planRepairs(store.conflict, replicas, keys)
    if (plan.repairs.length === 0) return
    const full = await this.fetchFull(t, store, plan.fetch)
    const writes = new Map<string, KeySet[]>()
    for (const repair of plan.repairs) {
      const merged = resolveSets(store.conflict, ...(full.get(repair.hex) ?? []))
      if (merged.length === 0) {
        report.keysUnrepaired++
        continue
      }
      for (const id of repair.lacking) writes.set(id, [...(writes.get(id) ?? []), { key: repair.key, siblings: merged }])
      report.keysRepaired++
    }
    for (const [id, items] of writes) {
      for (let i = 0; i < items.length; i += WRITE_BATCH) {
        const chunk = items.slice(i, i + WRITE_BATCH)
        await limiter.take(chunk.length)
        const sent = this.rt.time.monotonicMs()
        const res = await this.rt.view.nodeClient(id).mergePut(t, store.name, chunk)
        limiter.observe(this.rt.time.monotonicMs() - sent, chunk.length)
        report.keysPerSecondLimit = limiter.rate
        const ok = res.filter((r) => r.ok).length
        report.replicaWrites += ok
        report.replicaWriteFailures += res.length - ok
      }
    }
  }

  /** Full versions of the planned keys from their sources, per key (hex). */
  private async fetchFull(t: RequestOptions, store: StoreDef, fetch: ReadonlyMap<string, Uint8Array[]>): Promise<Map<string, SiblingSet[]>> {
    const full = new Map<string, SiblingSet[]>()
    for (const [source, wanted] of fetch) {
      for (let i = 0; i < wanted.length; i += WRITE_BATCH) {
        const chunk = wanted.slice(i, i + WRITE_BATCH)
        const res = await this.rt.view.nodeClient(source).get(t, store.name, chunk)
        res.forEach((r, j) => {
          if (!r.ok) return
          const hex = toHex(chunk[j] as Uint8Array)
          full.set(hex, [...(full.get(hex) ?? []), r.value])
        })
      }
    }
    return full
  }
}
