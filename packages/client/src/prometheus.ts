import { InvalidInputError } from '@kvorum/core'
import { Counter, Gauge, Histogram, type Registry, register } from 'prom-client'
import type { Kvorum } from './client.js'
import type { OperationEvent } from './events.js'
import type { MetricsSnapshot } from './metrics.js'

/**
 * The SDK's metrics for a prom-client registry (`@kvorum/client/prometheus`,
 * the only module of the SDK that imports prom-client, an optional peer
 * dependency). Operations are counted as they finish (from the `operation`
 * event); everything else is read from `kv.stats()` when the registry is
 * scraped, so between scrapes this costs nothing.
 */

/** Bucket bounds of the operation duration histogram, seconds: from half a millisecond to the longest sane deadline. */
export const PROMETHEUS_DURATION_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** Options of prometheusMetrics. */
export interface PrometheusOptions {
  /** Where the metrics are registered. Default prom-client's global registry. */
  readonly registry?: Registry | undefined
  /** Prefix of every metric name. Default `kvorum_client_` (pass another to export two clients to one registry). */
  readonly prefix?: string | undefined
  /** Bucket bounds of `<prefix>operation_duration_seconds`, seconds. Default PROMETHEUS_DURATION_BUCKETS. */
  readonly buckets?: readonly number[] | undefined
}

/** What prometheusMetrics registered; `remove()` takes it out of the registry and stops listening. */
export interface PrometheusExport {
  /** The metric names registered. */
  readonly names: readonly string[]
  remove(): void
}

/** Monotonic counts of a snapshot, exported as `<prefix><name>` counters. */
const TOTALS: readonly [keyof MetricsSnapshot, string, string][] = [
  ['quorumFailures', 'quorum_failures_total', 'Operations that could not reach their read or write quorum.'],
  ['timeouts', 'timeouts_total', 'Operations that ran out of time before their quorum.'],
  ['readRepairs', 'read_repairs_total', 'Replicas a read found behind and sent the merged set to.'],
  ['readRepairsSkipped', 'read_repairs_skipped_total', 'Replicas behind only by a set already on its way to them (not repaired).'],
  ['hintsWritten', 'hints_written_total', 'Hints stored on a fallback for an unreachable replica.'],
  ['hintsDelivered', 'hints_delivered_total', 'Hints this process delivered to their target.'],
  ['siblingWarnings', 'sibling_warnings_total', 'Reads that found at least the warning number of siblings.'],
  ['clusterRefreshes', 'cluster_changes_total', 'Switches to a newer cluster definition.'],
  ['batches', 'batches_total', 'Batch requests sent to nodes.'],
  ['batchedItems', 'batched_items_total', 'Operations carried by those batch requests.'],
  ['backgroundFailures', 'background_failures_total', 'Background work (late writes, repairs, hints) that failed.'],
  ['backgroundUnexpected', 'background_unexpected_total', 'Background failures that were not KvorumErrors: bugs.'],
  ['listenerErrors', 'listener_errors_total', 'Event listener calls that threw or rejected.'],
]

/**
 * Register the metrics of `kv` on a prom-client registry: operations by
 * store, operation and outcome, their duration, per-node latency, queue depth
 * and state, hints, read repairs, siblings and background failures. Throws
 * KV_INVALID_INPUT, registering nothing, when the registry already has one
 * of the names (one client per registry and prefix).
 */
export function prometheusMetrics(kv: Kvorum, options: PrometheusOptions = {}): PrometheusExport {
  const registry = options.registry ?? register
  const p = options.prefix ?? 'kvorum_client_'
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(p)) throw new InvalidInputError(`prefix must be a Prometheus metric name prefix, got ${JSON.stringify(p)}`)
  const snapshot = latestSnapshot(kv)
  const ops = new Counter({
    name: `${p}operations_total`,
    help: 'Store operations finished, by store, operation (get, put, delete) and outcome (ok, error).',
    labelNames: ['store', 'op', 'outcome'],
    registers: [],
  })
  const errors = new Counter({
    name: `${p}operation_errors_total`,
    help: 'Failed store operations by error code (KV_*; "unexpected" for an error that is not a KvorumError).',
    labelNames: ['store', 'op', 'code'],
    registers: [],
  })
  const duration = new Histogram({
    name: `${p}operation_duration_seconds`,
    help: 'Store operation duration from call to answer, seconds.',
    labelNames: ['store', 'op', 'outcome'],
    buckets: [...(options.buckets ?? PROMETHEUS_DURATION_BUCKETS)],
    registers: [],
  })
  const metrics = [ops, errors, duration, ...totals(p, snapshot), ...gauges(p, snapshot)]
  const names = metrics.map((m) => (m as unknown as { name: string }).name)
  const taken = names.find((name) => registry.getSingleMetric(name))
  if (taken) throw new InvalidInputError(`the registry already has ${taken}: export one client per registry, or pass another prefix`)
  for (const m of metrics) registry.registerMetric(m)
  const onOperation = (e: OperationEvent) => {
    const outcome = e.ok ? 'ok' : 'error'
    ops.inc({ store: e.store, op: e.op, outcome })
    duration.observe({ store: e.store, op: e.op, outcome }, e.durationMs / 1000)
    if (!e.ok) errors.inc({ store: e.store, op: e.op, code: e.code ?? 'unexpected' })
  }
  kv.on('operation', onOperation)
  return {
    names,
    remove() {
      kv.off('operation', onOperation)
      for (const name of names) registry.removeSingleMetric(name)
    },
  }
}

/**
 * kv.stats() once per scrape: a registry collects every metric in the same
 * turn, so the snapshot is kept until the next microtask.
 */
function latestSnapshot(kv: Kvorum): () => MetricsSnapshot {
  let kept: MetricsSnapshot | undefined
  return () => {
    if (!kept) {
      kept = kv.stats()
      queueMicrotask(() => {
        kept = undefined
      })
    }
    return kept
  }
}

/** Counters that follow the snapshot's monotonic counts (each scrape adds what grew since the last). */
function totals(p: string, snapshot: () => MetricsSnapshot): Counter[] {
  return TOTALS.map(([field, name, help]) => {
    let last = 0
    return new Counter({
      name: `${p}${name}`,
      help,
      registers: [],
      collect() {
        const now = snapshot()[field] as number
        if (now > last) this.inc(now - last)
        last = now
      },
    })
  })
}

function gauges(p: string, snapshot: () => MetricsSnapshot): Gauge[] {
  return [
    new Gauge({
      name: `${p}siblings_seen_max`,
      help: 'Most siblings one read has found.',
      registers: [],
      collect() {
        this.set(snapshot().siblingsSeenMax)
      },
    }),
    new Gauge({
      name: `${p}node_up`,
      help: 'Whether the failure detector holds the node up (1) or down (0).',
      labelNames: ['node'],
      registers: [],
      collect() {
        this.reset()
        for (const [node, n] of Object.entries(snapshot().nodes)) this.set({ node }, n.up ? 1 : 0)
      },
    }),
    new Gauge({
      name: `${p}node_queue_depth`,
      help: 'Operations for the node waiting in this process (queued) or sent and not yet answered (in_flight).',
      labelNames: ['node', 'state'],
      registers: [],
      collect() {
        this.reset()
        for (const [node, n] of Object.entries(snapshot().nodes)) {
          this.set({ node, state: 'queued' }, n.queued)
          this.set({ node, state: 'in_flight' }, n.inFlight)
        }
      },
    }),
    new Gauge({
      name: `${p}node_latency_seconds`,
      help: 'Request latency to the node over its recent requests (last 1024 within a minute), seconds, by quantile.',
      labelNames: ['node', 'quantile'],
      registers: [],
      collect() {
        this.reset()
        for (const [node, n] of Object.entries(snapshot().nodes)) {
          if (n.latencySamples === 0) continue
          this.set({ node, quantile: '0.5' }, n.latencyMsP50 / 1000)
          this.set({ node, quantile: '0.99' }, n.latencyMsP99 / 1000)
        }
      },
    }),
  ]
}
