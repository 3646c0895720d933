import type { KeySet, StoredHint } from '@kvorum/core'
import type { Kvorum } from './client.js'
import { RateLimiter } from './rate-limit.js'

/** Options of the hint handoff worker. */
export interface HandoffOptions {
  /** Hints fetched and delivered per request. Default 256. */
  readonly batchSize?: number
  /** Pause between sweeps when nothing is left to deliver, ms. Default 1000. */
  readonly intervalMs?: number
  /** Keys delivered per second at most. Default 5000. */
  readonly maxKeysPerSecond?: number
  /** Pages read per target in one sweep, so one big backlog cannot starve the rest. Default 100. */
  readonly maxPagesPerTarget?: number
}

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
  private timer: NodeJS.Timeout | undefined
  private running: Promise<HandoffReport> | null = null
  private stopped = false
  private started = false
  private readonly onUp = () => this.kick()

  constructor(private readonly kv: Kvorum, options: HandoffOptions = {}) {
    this.batchSize = options.batchSize ?? 256
    this.intervalMs = options.intervalMs ?? 1000
    this.maxPages = options.maxPagesPerTarget ?? 100
    this.limiter = new RateLimiter(options.maxKeysPerSecond ?? 5000)
  }

  /** Sweep now, then every `intervalMs`, and whenever a node comes back up. */
  start(): void {
    if (this.started) return
    this.started = true
    this.kv.detector.on('up', this.onUp)
    this.kick()
  }

  stop(): Promise<unknown> {
    this.stopped = true
    this.kv.detector.off('up', this.onUp)
    clearTimeout(this.timer)
    return this.running ?? Promise.resolve()
  }

  private kick(): void {
    if (!this.started || this.stopped || this.running) return
    clearTimeout(this.timer)
    this.running = this.sweep().finally(() => {
      this.running = null
      if (!this.stopped) {
        this.timer = setTimeout(() => this.kick(), this.intervalMs)
        this.timer.unref()
      }
    })
    this.kv.background(this.running)
  }

  /** One pass over every node's hint backlog. */
  async sweep(): Promise<HandoffReport> {
    const report: HandoffReport = { delivered: 0, failed: 0, remaining: 0 }
    const t = { timeoutMs: this.kv.requestTimeoutMs }
    for (const holder of this.kv.cluster.nodes) {
      if (!this.kv.detector.isUp(holder.id)) continue
      let targets
      try {
        targets = await this.kv.client(holder.id).hintTargets(t)
      } catch {
        continue
      }
      for (const { target, count } of targets) {
        if (this.stopped) return report
        const known = this.kv.cluster.nodes.some((n) => n.id === target)
        if (!known || !this.kv.detector.isUp(target) || !(await this.reachable(target))) {
          report.remaining += count
          continue
        }
        const moved = await this.deliver(holder.id, target)
        report.delivered += moved.delivered
        report.failed += moved.failed
        report.remaining += Math.max(0, count - moved.delivered)
      }
    }
    this.kv.metrics.hintsDelivered += report.delivered
    return report
  }

  private async reachable(target: string): Promise<boolean> {
    try {
      await this.kv.client(target).health({ timeoutMs: this.kv.requestTimeoutMs })
      return true
    } catch {
      return false
    }
  }

  /** Stream one holder's hints for one target; stop at the first failure. */
  private async deliver(holder: string, target: string): Promise<{ delivered: number; failed: number }> {
    const t = { timeoutMs: this.kv.requestTimeoutMs }
    let after = 0
    let delivered = 0
    let failed = 0
    for (let page = 0; page < this.maxPages && !this.stopped; page++) {
      const hints = await this.kv.client(holder).listHints(t, target, this.batchSize, after)
      if (hints.length === 0) break
      after = (hints[hints.length - 1] as StoredHint).id
      await this.limiter.take(hints.length)
      const acks: { id: number; seq: number }[] = []
      for (const [store, group] of groupByStore(hints)) {
        try {
          const results = await this.kv.client(target).mergePut(t, store, group.map((h): KeySet => ({ key: h.key, siblings: h.siblings })))
          results.forEach((r, i) => {
            const h = group[i] as StoredHint
            if (r.ok) acks.push({ id: h.id, seq: h.seq })
            else failed++
          })
        } catch {
          failed += group.length
          return { delivered, failed }
        }
      }
      if (acks.length > 0) delivered += await this.kv.client(holder).deleteHints(t, target, acks)
      if (hints.length < this.batchSize) break
    }
    return { delivered, failed }
  }
}

function groupByStore(hints: readonly StoredHint[]): Map<string, StoredHint[]> {
  const out = new Map<string, StoredHint[]>()
  for (const h of hints) out.set(h.store, [...(out.get(h.store) ?? []), h])
  return out
}

