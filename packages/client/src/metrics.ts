import { type RecordableHistogram, createHistogram } from 'node:perf_hooks'
import { type ClientEvents, codeOf } from './emitter.js'

/** One node as this process sees it, in `kv.stats().nodes`. */
export interface NodeStats {
  readonly url: string
  /** As the failure detector sees it. */
  readonly up: boolean
  /** Operations waiting in this process for a request to the node. */
  readonly queued: number
  /** Operations sent to the node in requests not yet answered. */
  readonly inFlight: number
  /**
   * Request latency to the node over its last 1024 requests within the last
   * minute, ms (a request carries a batch of operations; a timeout counts as
   * the time waited; 0 without a sample).
   */
  readonly latencyMsP50: number
  readonly latencyMsP99: number
  /** Requests those percentiles were taken over. */
  readonly latencySamples: number
}

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
  /** Listener calls (`kv.on`) that threw or rejected: caught, and told to the backgroundError listeners. */
  readonly listenerErrors: number
  /** Per node id: up, queue depth, recent request latency. */
  readonly nodes: Record<string, NodeStats>
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

  /** `events`: where each finished operation is told (the exporters listen there). */
  constructor(private readonly events: ClientEvents) {}

  /** A public operation on `store` took `ms`; when it `failed`, `error` is what it failed with. */
  observe(store: string, op: string, ms: number, failed: boolean, error?: unknown): void {
    let o = this.ops.get(op)
    if (!o) {
      o = { hist: createHistogram(), errors: 0 }
      this.ops.set(op, o)
    }
    o.hist.record(Math.max(1, Math.round(ms * US_PER_MS)))
    if (failed) o.errors++
    this.events.emit('operation', () => ({ store, op, durationMs: ms, ok: !failed, ...(failed ? { error, ...codeOf(error) } : {}) }))
  }

  snapshot(background: { failures: number; unexpected: number }, nodes: Record<string, NodeStats>): MetricsSnapshot {
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
      listenerErrors: this.events.listenerErrors,
      nodes,
    }
  }
}
