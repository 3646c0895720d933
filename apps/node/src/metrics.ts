import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { StorageEngine } from '@kvorum/storage'
import { VERSION } from './version.js'

/**
 * Most hint targets labelled in `kvorum_node_hints_pending` (the largest
 * backlogs): targets come from request paths, so their number is not bounded
 * by the cluster's size.
 */
const MAX_HINT_TARGET_LABELS = 100

/**
 * Prometheus metrics of one node, read by `/metrics`. Counts that only grow
 * are counters named `*_total`; Node's default metrics keep their standard
 * names (`process_*`, `nodejs_*`) so stock dashboards find them.
 */
export function nodeMetrics(engine: StorageEngine) {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const requests = new Counter({
    name: 'kvorum_node_requests_total',
    help: 'Requests served, by route and status',
    labelNames: ['route', 'status'],
    registers: [registry],
  })
  const latency = new Histogram({
    name: 'kvorum_node_request_seconds',
    help: 'Request latency by route',
    labelNames: ['route'],
    buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    registers: [registry],
  })
  new Gauge({
    name: 'kvorum_node_build_info',
    help: 'Always 1; the labels say which build runs as which node',
    labelNames: ['version', 'node_id', 'nodejs'],
    registers: [registry],
  }).set({ version: VERSION, node_id: engine.nodeId, nodejs: process.version }, 1)

  // The engine counts; a scrape copies its count into the counter.
  const counter = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset()
        this.inc(read())
      },
    })
  counter('kvorum_node_coordinated_writes_total', 'Writes this node coordinated (dots assigned)', () => engine.stats.coordinated)
  counter('kvorum_node_merged_writes_total', 'Sibling sets merged as a replica', () => engine.stats.merged)
  counter('kvorum_node_hints_stored_total', 'Hints stored for other nodes', () => engine.stats.hintsStored)
  counter('kvorum_node_hints_refused_total', 'Hints refused because a target backlog was full', () => engine.stats.hintsRefused)
  counter('kvorum_node_hints_expired_total', 'Hints dropped for age (left to anti-entropy)', () => engine.stats.hintsExpired)
  counter('kvorum_node_hints_damaged_total', 'Kept hints found undeliverable (checksum failed: dropped; undecodable: kept)', () => engine.stats.hintsDamaged)
  counter('kvorum_node_item_errors_total', 'Batch items refused', () => engine.stats.itemErrors)
  counter('kvorum_node_tombstones_reaped_total', 'Tombstones removed by reaping', () => engine.stats.tombstonesReaped)
  counter('kvorum_node_partitions_dropped_total', 'Partitions whose rows this node dropped on a placement change', () => engine.stats.partitionsDropped)
  counter(
    'kvorum_node_corrupt_rows_total',
    'Damaged rows found (checksum or decode failed): refused with KV_DATA_CORRUPT, restored by repair',
    () => engine.corrupt.total,
  )
  counter('kvorum_node_disk_full_refusals_total', 'Writes refused with KV_DISK_FULL (no room on the disk or under --max-db-mib)', () => engine.disk.refusals)
  counter(
    'kvorum_node_group_commits_total',
    'SQLite transactions committed (writes per transaction = (coordinated + merged) / this)',
    () => engine.groupCommits,
  )

  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read())
      },
    })
  gauge('kvorum_node_cluster_version', 'Version of the cluster definition this node holds (0 before cluster init)', () => engine.clusterVersion)
  gauge('kvorum_node_cache_keys', 'Keys held by the cache of recently used keys', () => engine.cacheSize.keys)
  gauge('kvorum_node_cache_bytes', 'Bytes of stored sets held by the cache of recently used keys (bounded)', () => engine.cacheSize.bytes)
  gauge('kvorum_node_leaves_rebuild_seconds', 'Time the last start spent rebuilding Merkle leaves after an unclean stop (0 after a clean one)', () =>
    engine.leavesOpened.rebuilt ? engine.leavesOpened.ms / 1000 : 0,
  )
  gauge('kvorum_node_write_queue_depth', 'Writes waiting for the next group commit', () => engine.queueDepth)
  gauge('kvorum_node_disk_full', '1 while the last write found no room (the disk or --max-db-mib is full; reads still served), else 0', () =>
    engine.disk.full ? 1 : 0,
  )
  gauge(
    'kvorum_node_damaged_pages_at_open',
    "Problems SQLite's quick_check found at the last start (0 when none, or when the check was skipped)",
    () => engine.atOpen.problems.length,
  )
  gauge('kvorum_node_database_quota_bytes', 'The database quota (--max-db-mib), 0 without one', () => engine.quotaBytes)
  gauge('kvorum_node_database_bytes', 'Size of the SQLite database file (pages x page size; the WAL not included)', () => engine.databaseBytes)

  new Gauge({
    name: 'kvorum_node_hints_pending',
    help: `Keys hinted for a target node and not yet delivered (the ${MAX_HINT_TARGET_LABELS} largest backlogs)`,
    labelNames: ['target'],
    registers: [registry],
    collect() {
      this.reset()
      const largest = [...engine.hintsPending].sort((a, b) => b[1] - a[1]).slice(0, MAX_HINT_TARGET_LABELS)
      for (const [target, keys] of largest) this.set({ target }, keys)
    },
  })
  const perStore = (name: string, help: string, read: (size: { keys: number; bytes: number }) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['store'],
      registers: [registry],
      // Every store of the definition, at 0 until it holds a key, and any other store with rows.
      async collect() {
        this.reset()
        for (const store of (await engine.getCluster())?.stores ?? []) this.set({ store: store.name }, 0)
        for (const [store, size] of engine.storeSizes) this.set({ store }, read(size))
      },
    })
  perStore('kvorum_node_store_keys', 'Keys stored per store, tombstones included until reaped', (s) => s.keys)
  perStore('kvorum_node_store_bytes', 'Bytes of keys and stored sets per store (before SQLite page and index overhead)', (s) => s.bytes)
  return { registry, requests, latency }
}
