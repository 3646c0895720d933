import type { HintTarget, KeySet, StoredHint, TimerHandle } from '@kvorum/core'
import { RateLimiter } from './rate-limit.js'
import type { Runtime } from './runtime.js'

/** Options of the hint handoff worker. */
export interface HandoffOptions {
  /** Hints fetched and delivered per request. Default 256. */
  readonly batchSize?: number | undefined
  /** Pause between sweeps when nothing is left to deliver, ms. Default 1000. */
  readonly intervalMs?: number | undefined
  /** Keys delivered per second at most. Default 5000. */
  readonly maxKeysPerSecond?: number | undefined
  /** Pages read per target in one sweep, so one big backlog cannot starve the rest. Default 100. */
  readonly maxPagesPerTarget?: number | undefined
}

/** The defaults of HandoffOptions. */
export const HANDOFF_DEFAULTS = { batchSize: 256, intervalMs: 1000, maxKeysPerSecond: 5000, maxPagesPerTarget: 100 } as const

/** What one sweep did. */
export interface HandoffReport {
  delivered: number
  failed: number
  /** Hints still kept for targets that are down or did not take them. */
  remaining: number
}

/**
 * Delivers hints: for every node that keeps hints for a target that answers
 * again, streams them to the target in batches and deletes each only after
 * the target acknowledged it (a hint merged again meanwhile is kept, by seq).
 * Runs inside any application process (`kv.startHandoff()`), in
 * `kvorum repair --daemon`, and in `kvorum dev`.
 */
export class HandoffWorker {
  private readonly batchSize: number
  private readonly intervalMs: number
  private readonly maxPages: number
  private readonly limiter: RateLimiter
  private timer: TimerHandle | undefined
  private running: Promise<HandoffReport> | null = null
  private stopped = false
  private started = false
  private readonly onUp = () => this.kick()

  constructor(
    private readonly rt: Runtime,
    options: HandoffOptions = {},
  ) {
    this.batchSize = options.batchSize ?? HANDOFF_DEFAULTS.batchSize
    this.intervalMs = options.intervalMs ?? HANDOFF_DEFAULTS.intervalMs
    this.maxPages = options.maxPagesPerTarget ?? HANDOFF_DEFAULTS.maxPagesPerTarget
    this.limiter = new RateLimiter(options.maxKeysPerSecond ?? HANDOFF_DEFAULTS.maxKeysPerSecond, rt.time)
  }

  /** Sweep now, then every `intervalMs`, and whenever a node comes back up. */
  start(): void {
    if (this.started) return
    this.started = true
    this.rt.nodes.detector.on('up', this.onUp)
    this.kick()
  }

  stop(): Promise<unknown> {
    this.stopped = true
    this.rt.nodes.detector.off('up', this.onUp)
    this.rt.time.clearTimeout(this.timer)
    return this.running ?? Promise.resolve()
  }

  private kick(): void {
    if (!this.started || this.stopped || this.running) return
    this.rt.time.clearTimeout(this.timer)
    this.running = this.sweep().finally(() => {
      this.running = null
      if (!this.stopped) this.timer = this.rt.time.setTimeout(() => this.kick(), this.intervalMs, true)
    })
    this.rt.background.run('handoff', this.running)
  }

  /** One pass over every node's hint backlog. */
  async sweep(): Promise<HandoffReport> {
    const report: HandoffReport = { delivered: 0, failed: 0, remaining: 0 }
    const t = { timeoutMs: this.rt.settings.requestTimeoutMs }
    for (const holder of this.rt.view.cluster.nodes) {
      if (!this.rt.nodes.isUp(holder.id)) continue
      let targets: HintTarget[]
      try {
        targets = await this.rt.view.nodeClient(holder.id).hintTargets(t)
      } catch {
        continue
      }
      for (const { target, count } of targets) {
        if (this.stopped) return report
        const known = this.rt.view.cluster.nodes.some((n) => n.id === target)
        // A target that left the cluster will never take its hints: they go to the current replicas (rule 9).
        if (known && (!this.rt.nodes.isUp(target) || !(await this.reachable(target)))) {
          report.remaining += count
          continue
        }
        let moved: { delivered: number; failed: number }
        try {
          moved = await this.deliver(holder.id, target, known)
        } catch {
          // The holder stopped answering mid-way: what was acknowledged is deleted, the rest waits for the next sweep.
          report.remaining += count
          continue
        }
        report.delivered += moved.delivered
        report.failed += moved.failed
        report.remaining += Math.max(0, count - moved.delivered)
      }
    }
    this.rt.metrics.hintsDelivered += report.delivered
    return report
  }

  private retarget(hints: readonly StoredHint[]): Promise<{ id: number; seq: number }[]> {
    return retargetHints(this.rt, hints)
  }

  private async reachable(target: string): Promise<boolean> {
    try {
      await this.rt.view.nodeClient(target).health({ timeoutMs: this.rt.settings.requestTimeoutMs })
      return true
    } catch {
      return false
    }
  }

  /**
   * Stream one holder's hints for one target; stop at the first failure. A
   * hint the target refuses as stale (it no longer replicates the key), and
   * every hint of a target that left the cluster, is merged into the key's
   * current replicas instead and then deleted (MEMBERSHIP rule 9): never
   * dropped, never retried at a stale target forever.
   */
  private async deliver(holder: string, target: string, known: boolean): Promise<{ delivered: number; failed: number }> {
    const t = { timeoutMs: this.rt.settings.requestTimeoutMs }
    let after = 0
    let delivered = 0
    let failed = 0
    for (let page = 0; page < this.maxPages && !this.stopped; page++) {
      const hints = await this.rt.view.nodeClient(holder).listHints(t, target, this.batchSize, after)
      if (hints.length === 0) break
      after = (hints[hints.length - 1] as StoredHint).id
      await this.limiter.take(hints.length)
      const acks: { id: number; seq: number }[] = []
      const stale: StoredHint[] = known ? [] : [...hints]
      for (const [store, group] of known ? groupByStore(hints) : []) {
        try {
          const results = await this.rt.view.nodeClient(target).mergePut(
            t,
            store,
            group.map((h): KeySet => ({ key: h.key, siblings: h.siblings })),
          )
          results.forEach((r, i) => {
            const h = group[i] as StoredHint
            if (r.ok) acks.push({ id: h.id, seq: h.seq })
            else if (r.error.code === 'KV_STALE_METADATA') stale.push(h)
            else failed++
          })
        } catch {
          failed += group.length
          return { delivered, failed }
        }
      }
      const moved = await this.retarget(stale)
      failed += stale.length - moved.length
      acks.push(...moved)
      if (acks.length > 0) delivered += await this.rt.view.nodeClient(holder).deleteHints(t, target, acks)
      if (hints.length < this.batchSize) break
    }
    return { delivered, failed }
  }
}

/** Acks of the hints that at least w of their key's current writers took. */
async function retargetHints(rt: Runtime, hints: readonly StoredHint[]): Promise<{ id: number; seq: number }[]> {
  if (hints.length === 0) return []
  const t = { timeoutMs: rt.settings.requestTimeoutMs }
  const placement = rt.view.placement
  const taken = new Map<StoredHint, number>()
  const need = new Map<StoredHint, number>()
  const perNode = new Map<string, Map<string, StoredHint[]>>()
  for (const h of hints) {
    const store = rt.view.cluster.stores.find((s) => s.name === h.store)
    if (!store) continue
    const writers = placement.writers(placement.ring.partitionOf(h.key), store)
    need.set(h, Math.min(store.w, writers.length))
    for (const id of writers) {
      const byStore = perNode.get(id) ?? new Map<string, StoredHint[]>()
      byStore.set(h.store, [...(byStore.get(h.store) ?? []), h])
      perNode.set(id, byStore)
    }
  }
  await Promise.all(
    [...perNode].map(async ([id, byStore]) => {
      if (!rt.nodes.isUp(id)) return
      for (const [store, group] of byStore) {
        try {
          const results = await rt.view.nodeClient(id).mergePut(
            t,
            store,
            group.map((h): KeySet => ({ key: h.key, siblings: h.siblings })),
          )
          results.forEach((r, i) => {
            const h = group[i] as StoredHint
            if (r.ok) taken.set(h, (taken.get(h) ?? 0) + 1)
          })
        } catch {
          // That writer did not take them now; the others may have, or the next sweep will try again.
        }
      }
    }),
  )
  return hints.filter((h) => (taken.get(h) ?? 0) >= (need.get(h) ?? Number.POSITIVE_INFINITY)).map((h) => ({ id: h.id, seq: h.seq }))
}

function groupByStore(hints: readonly StoredHint[]): Map<string, StoredHint[]> {
  const out = new Map<string, StoredHint[]>()
  for (const h of hints) out.set(h.store, [...(out.get(h.store) ?? []), h])
  return out
}
