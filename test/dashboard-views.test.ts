import type { Kvorum } from '@kvorum/client'
import { type ClusterDef, type NodeDef, Ring, initialAssignment, storeDef } from '@kvorum/core'
import { describe, expect, it } from 'vitest'
import { Collector } from '../apps/cli/src/dashboard/collector.js'
import { RebalanceTracker } from '../apps/cli/src/dashboard/rebalance-view.js'
import { ringView } from '../apps/cli/src/dashboard/ring-view.js'
import { readScrape } from '../apps/cli/src/dashboard/scrape.js'
import type { SiblingSampler } from '../apps/cli/src/dashboard/siblings.js'

const NODES: NodeDef[] = [1, 2, 3, 4].map((i) => ({ id: `n${i}`, url: `http://127.0.0.1:${7000 + i}` }))

function cluster(partitions = 16): ClusterDef {
  const nodes = NODES.slice(0, 3)
  return { version: 3, partitions, nodes, assignment: initialAssignment(nodes, partitions), stores: [storeDef({ name: 'default' })] }
}

/** A definition in the middle of moving `moved` entries to n4 (of `total` the plan moves), at `step` of `steps`. */
function moving(total: number, moved: number, step: number, steps: number, entriesPerStep = 4): ClusterDef {
  const def = cluster()
  const target = def.assignment.map((o, q) => (q < total ? 'n4' : o))
  const assignment = def.assignment.map((o, q) => (q < moved ? 'n4' : o))
  const next = target.map((o, q) => (q < moved + entriesPerStep ? o : (assignment[q] as string)))
  return {
    ...def,
    nodes: NODES,
    assignment,
    move: { planId: 'p3-abc', step, steps, stage: 'write-both', next, target, targetNodes: NODES, entriesPerStep },
  }
}

describe('the dashboard reads /metrics', () => {
  it('sums requests, 5xx answers, keys over stores and hints per target from Prometheus text', () => {
    const text = [
      '# HELP kvorum_node_requests_total Requests served, by route and status',
      '# TYPE kvorum_node_requests_total counter',
      'kvorum_node_requests_total{route="get",status="200"} 120',
      'kvorum_node_requests_total{route="put",status="200"} 30',
      'kvorum_node_requests_total{route="put",status="503"} 4',
      'kvorum_node_requests_total{route="get",status="500"} 1',
      '# TYPE kvorum_node_write_queue_depth gauge',
      'kvorum_node_write_queue_depth 7',
      '# TYPE kvorum_node_store_keys gauge',
      'kvorum_node_store_keys{store="default"} 10',
      'kvorum_node_store_keys{store="carts"} 5',
      '# TYPE kvorum_node_database_bytes gauge',
      'kvorum_node_database_bytes 45056',
      '# TYPE kvorum_node_cluster_version gauge',
      'kvorum_node_cluster_version 9',
      '# TYPE kvorum_node_hints_pending gauge',
      'kvorum_node_hints_pending{target="n2"} 12',
      'kvorum_node_hints_pending{target="n3"} 3',
      '',
    ].join('\n')
    expect(readScrape(text)).toEqual({
      requests: 155,
      serverErrors: 5,
      queueDepth: 7,
      keys: 15,
      databaseBytes: 45056,
      clusterVersion: 9,
      hintsFor: { n2: 12, n3: 3 },
    })
  })

  it('a body without our metrics reads as zeros, not as an error', () => {
    expect(readScrape('# TYPE other gauge\nother 1\n')).toMatchObject({ requests: 0, keys: 0, hintsFor: {} })
  })
})

describe('the ring view', () => {
  it('gives every partition its owner and its preference list of n replicas, and no move outside a change', () => {
    const def = cluster()
    const view = ringView(def)
    expect(view.owner.map((i) => view.nodes[i]?.id)).toEqual(def.assignment)
    expect(view.preference).toHaveLength(16)
    for (const [q, list] of view.preference.entries()) {
      expect(list).toHaveLength(3)
      expect(view.nodes[list[0] as number]?.id).toBe(def.assignment[q])
    }
    expect(view.move).toBeNull()
  })

  it('marks the partitions a step moves, with their next owner', () => {
    const view = ringView(moving(8, 0, 1, 2))
    expect(view.move).toMatchObject({ planId: 'p3-abc', step: 1, steps: 2, stage: 'write-both' })
    const n4 = view.nodes.findIndex((n) => n.id === 'n4')
    const to = new Map(view.move?.moving.map((m) => [m.partition, m.to]))
    for (const q of [0, 1, 2, 3]) expect(to.get(q)).toBe(n4)
    // Partitions whose owner stays but whose replica set gains n4 move too.
    expect(view.move?.moving.length).toBeGreaterThanOrEqual(4)
  })
})

describe('rebalance progress', () => {
  it('counts entries at their final owner, and measures the rate and ETA from what it watched', () => {
    const tracker = new RebalanceTracker()
    expect(tracker.observe(cluster(), 0)).toBeNull()
    const first = tracker.observe(moving(8, 0, 1, 2), 10_000)
    expect(first).toMatchObject({ step: 1, steps: 2, entriesTotal: 8, entriesDone: 0, entriesPerSecond: 0, etaSeconds: null })
    const later = tracker.observe(moving(8, 4, 2, 2), 12_000)
    expect(later).toMatchObject({ step: 2, entriesTotal: 8, entriesDone: 4, entriesPerSecond: 2, etaSeconds: 2, watchedSeconds: 2 })
    expect(tracker.observe(cluster(), 13_000)).toBeNull()
  })

  it('a plan first seen at a later step counts the earlier steps as done', () => {
    const view = new RebalanceTracker().observe(moving(12, 8, 3, 3), 0)
    expect(view).toMatchObject({ entriesTotal: 12, entriesDone: 8 })
  })
})

describe('the collector', () => {
  it('a poll that fails as a whole keeps the last snapshot and says why, until a poll succeeds again', async () => {
    // Nodes on ports nothing listens on: every request fails at once, as for a cluster that is down.
    const def = { ...cluster(), nodes: NODES.slice(0, 3).map((n, i) => ({ ...n, url: `http://127.0.0.1:${1 + i}` })) }
    let broken = false
    const kv = {
      get cluster() {
        if (broken) throw new Error('planted failure')
        return def
      },
      ring: new Ring(def),
      clusterVersions: async () => [],
      nodes: () => [],
      stats: () => ({ nodes: {}, quorumFailures: 0, timeouts: 0, readRepairs: 0, siblingsSeenMax: 0 }),
      store: () => ({ get: async () => ({ found: false }) }),
    } as unknown as Kvorum
    const sampler = { sample: async () => undefined, histogram: () => ({ counts: [0, 0, 0, 0, 0], reads: 0, partitionsSampled: 0 }) }
    const collector = new Collector(kv, sampler as unknown as SiblingSampler, {
      scrape: async () => {
        throw new Error('down')
      },
      intervalMs: 20,
      requestTimeoutMs: 200,
      repairEveryMs: 0,
      now: Date.now,
    })
    try {
      await collector.start()
      const first = collector.snapshot()
      expect(first?.nodes.map((n) => n.up)).toEqual([false, false, false])
      expect(first?.pollError).toBeUndefined()
      broken = true
      await expect.poll(() => collector.snapshot()?.pollError, { timeout: 5000, interval: 10 }).toBe('planted failure')
      expect(collector.snapshot()?.atMs).toBe(first?.atMs)
      broken = false
      await expect.poll(() => collector.snapshot()?.pollError, { timeout: 5000, interval: 10 }).toBeUndefined()
      expect(collector.snapshot()?.atMs).toBeGreaterThan(first?.atMs ?? 0)
    } finally {
      await collector.stop()
    }
  })
})
