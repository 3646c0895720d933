import { type RecordableHistogram, createHistogram } from 'node:perf_hooks'

/** What an SDK instance has done, readable from `kv.stats()`. */
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
  /** Background work that failed (see the background-error channel), and of those the failures that were not KvorumErrors. */
  readonly backgroundFailures: number
  readonly backgroundUnexpected: number
}

/** Latencies are recorded in µs (perf_hooks histograms take integers). */
const US_PER_MS = 1000

/** The counters a snapshot copies, by name. */
const COUNTERS = [
  'quorumFailures',
  'timeouts',
  'readRepairs',
  'readRepairsSkipped',
  'hintsWritten',
  'hintsDelivered',
  'siblingsSeenMax',
  'siblingWarnings',
  'clusterRefreshes',
  'batches',
  'batchedItems',
] as const satisfies readonly (keyof MetricsSnapshot)[]
type Counter = (typeof COUNTERS)[number]

/** The SDK's counters and per-operation latency (perf_hooks histograms). */
export class ClientMetrics {
  private readonly ops = new Map<string, { hist: RecordableHistogram; errors: number }>()
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
      o = { hist: createHistogram(), errors: 0 }
      this.ops.set(op, o)
    }
    o.hist.record(Math.max(1, Math.round(ms * US_PER_MS)))
    if (failed) o.errors++
  }

  snapshot(background: { failures: number; unexpected: number }): MetricsSnapshot {
    const operations: MetricsSnapshot['operations'] = {}
    const ms = (us: number) => us / US_PER_MS
    for (const [op, { hist, errors }] of this.ops) {
      operations[op] = {
        count: hist.count,
        errors,
        p50Ms: ms(hist.percentile(50)),
        p99Ms: ms(hist.percentile(99)),
        p999Ms: ms(hist.percentile(99.9)),
        maxMs: ms(hist.max),
      }
    }
    const counters = Object.fromEntries(COUNTERS.map((name) => [name, this[name]])) as Record<Counter, number>
    return {
      operations,
      ...counters,
      backgroundFailures: background.failures,
      backgroundUnexpected: background.unexpected,
    }
  }
}
