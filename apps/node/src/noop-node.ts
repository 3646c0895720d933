import { mkdirSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { getRequestListener } from '@hono/node-server'
import type { CoordinateResult, ItemResult, SiblingSet, StoreBatch, StoreBatchResults } from '@kvorum/core'
import { StorageEngine } from '@kvorum/storage'
import { createApp } from './app.js'
import { nodeLogger } from './logger.js'

/** The one actor of the canned version every no-op node answers reads with: alike on every replica, so no read repair. */
const CANNED_ACTOR = 'noop'

/**
 * A node for the benchmark's batch ceiling: the real HTTP app, routes, codecs
 * and cluster definition, but store batches answered without any work: no
 * SQLite, no Merkle digests, no merge. Reads answer one canned version of the
 * run's value size; a write to coordinate answers its own new version; a merge
 * answers done. Driven by the same SDK with the same batching as the real
 * cluster, it is the limit of this transport on this machine.
 */
export async function noopNode(dataDir: string, valueBytes: number): Promise<{ port: number }> {
  mkdirSync(dataDir, { recursive: true })
  const engine = new StorageEngine({ path: join(dataDir, 'kvorum.db'), nodeId: `noop-${process.pid}`, durability: 'normal' })
  const canned: SiblingSet = [{ dot: { actor: CANNED_ACTOR, counter: 1 }, context: {}, timestamp: 0, value: new Uint8Array(valueBytes).fill(7) }]
  const actor = `noop-${process.pid}`
  let counter = 0
  const batch = async (_store: string, b: StoreBatch): Promise<StoreBatchResults> => ({
    gets: b.keys.map((): ItemResult<SiblingSet> => ({ ok: true, value: canned })),
    coordinates: b.coordinates.map((item): ItemResult<CoordinateResult> => {
      const dot = { actor, counter: ++counter }
      return { ok: true, value: { dot, siblings: [{ dot, context: item.context, timestamp: item.timestamp, value: item.value }] } }
    }),
    merges: b.merges.map((): ItemResult<null> => ({ ok: true, value: null })),
  })
  // Every other operation (the cluster definition, health) is the real engine's.
  const noop = new Proxy(engine, {
    get: (target, prop, receiver) => {
      if (prop === 'batch') return batch
      const v = Reflect.get(target, prop, receiver)
      return typeof v === 'function' ? v.bind(target) : v
    },
  })
  const app = createApp({ engine: noop, logger: nodeLogger('error', actor) })
  const server = createServer(getRequestListener(app.fetch, { hostname: '127.0.0.1' }))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const stop = () => {
    server.close()
    engine.close()
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('disconnect', stop)
  return { port: (server.address() as AddressInfo).port }
}
