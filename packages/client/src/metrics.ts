/** A latency histogram with log-spaced buckets (5% wide) from 10 µs to 100 s. */
export class Histogram {
  private static readonly base = 1.05
  private static readonly minMs = 0.01
  private readonly buckets = new Map<number, number>()
  count = 0
  maxMs = 0
  sumMs = 0

  record(ms: number): void {
    const i = ms <= Histogram.minMs ? 0 : Math.ceil(Math.log(ms / Histogram.minMs) / Math.log(Histogram.base))
    this.buckets.set(i, (this.buckets.get(i) ?? 0) + 1)
    this.count++
    this.sumMs += ms
    if (ms > this.maxMs) this.maxMs = ms
  }

  /** The latency at quantile q (0..1), to within 5%. */
  quantile(q: number): number {
    if (this.count === 0) return 0
    const rank = Math.ceil(q * this.count)
    let seen = 0
    for (const i of [...this.buckets.keys()].sort((a, b) => a - b)) {
      seen += this.buckets.get(i) as number
      if (seen >= rank) return Math.min(this.maxMs, Histogram.minMs * Histogram.base ** i)
    }
    return this.maxMs
  }

  merge(other: Histogram): void {
    for (const [i, n] of other.buckets) this.buckets.set(i, (this.buckets.get(i) ?? 0) + n)
    this.count += other.count
    this.sumMs += other.sumMs
    this.maxMs = Math.max(this.maxMs, other.maxMs)
  }
}

/** What an SDK instance has done, readable from `kv.metrics()`. */
export interface MetricsSnapshot {
  readonly operations: Record<string, { count: number; errors: number; p50Ms: number; p99Ms: number; p999Ms: number; maxMs: number }>
  readonly quorumFailures: number
  readonly timeouts: number
  readonly readRepairs: number
  /** Replicas a read found behind only by a set this client was already sending them: not repaired. */
  readonly readRepairsSkipped: number
  readonly hintsWritten: number
  readonly hintsDelivered: number
  readonly siblingsSeenMax: number
  readonly siblingWarnings: number
  readonly clusterRefreshes: number
  readonly batches: number
  readonly batchedItems: number
}

/** The SDK's counters and per-operation latency. */
export class ClientMetrics {
  private readonly ops = new Map<string, { hist: Histogram; errors: number }>()
  quorumFailures = 0
  timeouts = 0
  readRepairs = 0
  readRepairsSkipped = 0
  hintsWritten = 0
  hintsDelivered = 0
  siblingsSeenMax = 0
  siblingWarnings = 0
  clusterRefreshes = 0
  batches = 0
  batchedItems = 0

  observe(op: string, ms: number, failed: boolean): void {
    let o = this.ops.get(op)
    if (!o) {
      o = { hist: new Histogram(), errors: 0 }
      this.ops.set(op, o)
    }
    o.hist.record(ms)
    if (failed) o.errors++
  }

  snapshot(): MetricsSnapshot {
    const operations: MetricsSnapshot['operations'] = {}
    for (const [op, { hist, errors }] of this.ops) {
      operations[op] = { count: hist.count, errors, p50Ms: hist.quantile(0.5), p99Ms: hist.quantile(0.99), p999Ms: hist.quantile(0.999), maxMs: hist.maxMs }
    }
    const { quorumFailures, timeouts, readRepairs, readRepairsSkipped, hintsWritten, hintsDelivered, siblingsSeenMax, siblingWarnings, clusterRefreshes, batches, batchedItems } = this
    return { operations, quorumFailures, timeouts, readRepairs, readRepairsSkipped, hintsWritten, hintsDelivered, siblingsSeenMax, siblingWarnings, clusterRefreshes, batches, batchedItems }
  }
}
