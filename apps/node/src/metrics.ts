import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { StorageEngine } from '@kvorum/storage'

/** Prometheus metrics of one node, read by `/metrics`. */
export function nodeMetrics(engine: StorageEngine) {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'kvorum_node_' })
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
  const stat = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read())
      },
    })
  stat('kvorum_node_coordinated_writes', 'Writes this node coordinated (dots assigned)', () => engine.stats.coordinated)
  stat('kvorum_node_merged_writes', 'Sibling sets merged as a replica', () => engine.stats.merged)
  stat('kvorum_node_hints_stored', 'Hints stored for other nodes', () => engine.stats.hintsStored)
  stat('kvorum_node_hints_refused', 'Hints refused because a target backlog was full', () => engine.stats.hintsRefused)
  stat('kvorum_node_hints_expired', 'Hints dropped for age (left to anti-entropy)', () => engine.stats.hintsExpired)
  stat('kvorum_node_item_errors', 'Batch items refused', () => engine.stats.itemErrors)
  stat('kvorum_node_cache_keys', 'Keys held by the cache of recently used keys', () => engine.cacheSize.keys)
  stat('kvorum_node_cache_bytes', 'Bytes of stored sets held by the cache of recently used keys (bounded)', () => engine.cacheSize.bytes)
  stat('kvorum_node_leaves_rebuild_seconds', 'Time the last start spent rebuilding Merkle leaves after an unclean stop (0 after a clean one)', () =>
    engine.leavesOpened.rebuilt ? engine.leavesOpened.ms / 1000 : 0,
  )
  stat('kvorum_node_group_commits', 'SQLite transactions committed (writes per transaction = (coordinated + merged) / this)', () => engine.groupCommits)
  stat('kvorum_node_write_queue_depth', 'Writes waiting for the next group commit', () => engine.queueDepth)
  return { registry, requests, latency }
}
