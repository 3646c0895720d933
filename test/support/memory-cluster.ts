import { type ClusterDef, type NodeDef, type NodeProtocol, type StoreBatch, type StoreDef, initialAssignment, realTime, storeDef } from '@kvorum/core'
import { type EngineOptions, StorageEngine } from '@kvorum/storage'
import { type ConnectOptions, type Kvorum, type NodeClient, connect } from '@kvorum/client'
import { MemoryTransport } from '@kvorum/client/testing'

/** A cluster of in-process storage engines reached through the in-memory transport. */
export interface MemoryCluster {
  readonly engines: Map<string, StorageEngine>
  readonly cluster: ClusterDef
  readonly nodes: readonly NodeDef[]
  /** A new SDK client with its own transport (so each has its own view of reachability). */
  client(options?: Partial<ConnectOptions>): Promise<{ kv: Kvorum; transport: MemoryTransport }>
  /** The operator's view of one engine: always reachable, whatever a client's transport says. */
  replica(id: string): NodeClient
  /** Install a new cluster definition on every engine. */
  install(def: ClusterDef): Promise<void>
  close(): Promise<void>
}

export interface MemoryClusterOptions {
  readonly nodes?: number
  readonly partitions?: number
  readonly stores?: readonly (Partial<StoreDef> & { name: string })[]
  readonly now?: () => number
  /** More options of each node's engine (a file path, cache bounds). */
  readonly engine?: (id: string) => Partial<EngineOptions>
}

/** Start `nodes` in-memory engines (default 3) holding one cluster definition. */
export async function memoryCluster(options: MemoryClusterOptions = {}): Promise<MemoryCluster> {
  const count = options.nodes ?? 3
  const partitions = options.partitions ?? 64
  const nodes: NodeDef[] = Array.from({ length: count }, (_, i) => ({ id: `n${i + 1}`, url: `mem://n${i + 1}` }))
  const stores = (options.stores ?? [{ name: 'default' }]).map((s) => storeDef({ n: Math.min(3, count), r: Math.min(2, count), w: Math.min(2, count), ...s }))
  const cluster: ClusterDef = { version: 1, partitions, nodes, assignment: initialAssignment(nodes, partitions), stores }
  const engines = new Map<string, StorageEngine>()
  for (const n of nodes) {
    const engine = new StorageEngine({
      path: ':memory:',
      nodeId: n.id,
      ...(options.now ? { time: { ...realTime, now: options.now } } : {}),
      ...options.engine?.(n.id),
    })
    await engine.putCluster(cluster)
    engines.set(n.id, engine)
  }
  const clients: Kvorum[] = []
  const operator = new MemoryTransport(engines as Map<string, NodeProtocol>)
  return {
    engines,
    cluster,
    nodes,
    async client(extra = {}) {
      const transport = new MemoryTransport(engines as Map<string, NodeProtocol>)
      const kv = await connect({ seeds: [nodes[0] as NodeDef], transport, timeoutMs: 1000, requestTimeoutMs: 300, detector: { probeIntervalMs: 20 }, ...extra })
      clients.push(kv)
      return { kv, transport }
    },
    replica(id) {
      const def = nodes.find((n) => n.id === id)
      if (!def) throw new Error(`assertion failed: no node ${id}`)
      return operator.node(def)
    },
    async install(def) {
      for (const e of engines.values()) await e.putCluster(def)
    },
    async close() {
      await Promise.all(clients.map((c) => c.close(200)))
      for (const e of engines.values()) e.close()
    },
  }
}

type BatchReply = Awaited<ReturnType<NodeProtocol['batch']>>

/**
 * The engines behind a proxy whose store batches go through `wrap` (which
 * may fail, delay or edit them, and calls `run` to reach the engine); every
 * other call reaches the engine as it is.
 */
export function wrapBatches(
  engines: ReadonlyMap<string, NodeProtocol>,
  wrap: (id: string, store: string, batch: StoreBatch, run: () => Promise<BatchReply>) => Promise<BatchReply>,
): Map<string, NodeProtocol> {
  return new Map(
    [...engines].map(([id, engine]) => [
      id,
      new Proxy(engine, {
        get(target, prop) {
          const v = Reflect.get(target, prop)
          if (prop !== 'batch') return typeof v === 'function' ? v.bind(target) : v
          return (store: string, batch: StoreBatch) => wrap(id, store, batch, () => target.batch(store, batch))
        },
      }),
    ]),
  )
}
