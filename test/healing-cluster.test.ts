import { type HealingCluster, healingCases } from './healing.case.js'
import { startCluster } from './support/process-cluster.js'

/**
 * The healing behaviours over real node processes on loopback. Down is SIGKILL and a restart on the same data
 * directory; cut off is SIGSTOP (the process holds its sockets, so requests hang until the client's timeout);
 * wiped is a restart on an empty directory with the cluster definition installed again.
 */
healingCases('node processes', {
  loadKeys: 100_000,
  graceMs: 1000,
  async start(options) {
    const pc = await startCluster({
      ...(options.partitions ? { partitions: options.partitions } : {}),
      ...(options.tombstoneGraceMs === undefined ? {} : { stores: [{ name: 'default', tombstoneGraceMs: options.tombstoneGraceMs }] }),
    })
    const cluster: HealingCluster = {
      ids: pc.def.nodes.map((n) => n.id),
      partitions: pc.def.partitions,
      replica: (id) => pc.replica(id),
      connect: (extra) => pc.connect(extra),
      down: (id) => pc.kill(id),
      up: async (id) => {
        await pc.start(id)
      },
      cut: (id) => pc.pause(id),
      uncut: (id) => pc.resume(id),
      async wipe(id) {
        await pc.kill(id)
        await pc.start(id, { wipe: true })
      },
      close: () => pc.close(),
    }
    return cluster
  },
})
