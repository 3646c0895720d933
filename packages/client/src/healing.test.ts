import { StorageEngine } from '@kvorum/storage'
import { type HealingCluster, healingCases } from '../../../test/healing.case.js'
import { memoryCluster } from '../../../test/support/memory-cluster.js'
import type { MemoryTransport } from './testing.js'

/**
 * The healing behaviours over in-process engines behind the in-memory transport. A node that is down or cut
 * off is one every client's transport refuses; its engine keeps running, so both are the same fault here.
 */
healingCases('in memory', {
  loadKeys: 20_000,
  graceMs: 200,
  async start(options) {
    const mc = await memoryCluster({
      ...(options.partitions ? { partitions: options.partitions } : {}),
      ...(options.tombstoneGraceMs === undefined ? {} : { stores: [{ name: 'default', tombstoneGraceMs: options.tombstoneGraceMs }] }),
    })
    const transports: MemoryTransport[] = []
    const unreachable = new Set<string>()
    const reach = (id: string, reachable: boolean) => {
      if (reachable) unreachable.delete(id)
      else unreachable.add(id)
      for (const t of transports) t.setReachable(id, reachable)
    }
    const cluster: HealingCluster = {
      ids: mc.nodes.map((n) => n.id),
      partitions: mc.cluster.partitions,
      replica: (id) => mc.replica(id),
      async connect(extra = {}) {
        const { kv, transport } = await mc.client(extra)
        for (const id of unreachable) transport.setReachable(id, false)
        transports.push(transport)
        return kv
      },
      down: async (id) => reach(id, false),
      up: async (id) => reach(id, true),
      cut: (id) => reach(id, false),
      uncut: (id) => reach(id, true),
      async wipe(id) {
        // A fresh empty engine under the same id, as a node whose database was deleted.
        mc.engines.get(id)?.close()
        const fresh = new StorageEngine({ path: ':memory:', nodeId: id })
        await fresh.putCluster(mc.cluster)
        mc.engines.set(id, fresh)
      },
      close: () => mc.close(),
    }
    return cluster
  },
})
