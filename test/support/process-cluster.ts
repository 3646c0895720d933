import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type ClusterDef, type NodeDef, type StoreDef, initialAssignment, storeDef } from '@kvorum/core'
import { type ConnectOptions, HttpTransport, type Kvorum, type NodeClient, connect } from '@kvorum/client'
import { type NodeProcess, startNode } from './node-process.js'

/** One node of a test cluster: its process (while running), data directory and fixed port. */
export interface ClusterNode {
  readonly id: string
  readonly dir: string
  port: number
  proc: NodeProcess | null
}

/** A cluster of real kvorum-node processes on 127.0.0.1, each in its own temporary directory. */
export interface ProcessCluster {
  readonly nodes: Map<string, ClusterNode>
  readonly def: ClusterDef
  readonly seeds: string[]
  readonly token: string
  /** A client; closed by `close()`. */
  connect(options?: Partial<ConnectOptions>): Promise<Kvorum>
  /** An HTTP transport straight to the nodes, for looking at replicas. */
  readonly transport: HttpTransport
  /** The operator's client for one node, through {@link transport}. */
  replica(id: string): NodeClient
  /** SIGKILL a node and wait for it to exit. */
  kill(id: string): Promise<void>
  /** SIGTERM a node and wait for it to exit. */
  stop(id: string): Promise<void>
  /** SIGSTOP / SIGCONT a node by PID. */
  pause(id: string): void
  resume(id: string): void
  /** Start a stopped node on its old port; `wipe` deletes its data directory first. */
  start(id: string, options?: { wipe?: boolean }): Promise<NodeProcess>
  close(): Promise<void>
}

export interface ProcessClusterOptions {
  readonly nodes?: number
  readonly partitions?: number
  readonly stores?: readonly (Partial<StoreDef> & { name: string })[]
  readonly durability?: 'normal' | 'full'
  /** Extra kvorum-node flags for every node. */
  readonly nodeArgs?: readonly string[]
  /** More kvorum-node flags for some nodes, by id (e.g. a small --max-db-mib for one). */
  readonly args?: Readonly<Record<string, readonly string[]>>
}

export async function startCluster(options: ProcessClusterOptions = {}): Promise<ProcessCluster> {
  const root = mkdtempSync(join(tmpdir(), 'kvorum-cluster-'))
  const token = 'test-token'
  const count = options.nodes ?? 3
  const nodes = new Map<string, ClusterNode>()
  const clients: Kvorum[] = []
  const durability = options.durability ?? 'normal'
  const launch = async (node: ClusterNode) => {
    const args = [...(options.nodeArgs ?? []), ...(options.args?.[node.id] ?? [])]
    node.proc = await startNode({ data: node.dir, id: node.id, port: node.port, token, durability, ...(args.length > 0 ? { args } : {}) })
    node.port = node.proc.port
    return node.proc
  }
  try {
    for (let i = 1; i <= count; i++) nodes.set(`n${i}`, { id: `n${i}`, dir: join(root, `n${i}`), port: 0, proc: null })
    // Eight at a time: dozens of nodes starting at once on two cores miss their ready deadline.
    const all = [...nodes.values()]
    for (let i = 0; i < all.length; i += 8) await Promise.all(all.slice(i, i + 8).map(launch))
  } catch (e) {
    await Promise.all([...nodes.values()].map((n) => n.proc?.kill9()))
    rmSync(root, { recursive: true, force: true })
    throw e
  }
  const defs: NodeDef[] = [...nodes.values()].map((n) => ({ id: n.id, url: `http://127.0.0.1:${n.port}` }))
  const partitions = options.partitions ?? 64
  const stores = (options.stores ?? [{ name: 'default' }]).map((s) => storeDef({ n: Math.min(3, count), r: Math.min(2, count), w: Math.min(2, count), ...s }))
  const def: ClusterDef = { version: 1, partitions, nodes: defs, assignment: initialAssignment(defs, partitions), stores }
  const transport = new HttpTransport({ token })
  for (const n of defs) await transport.node(n).putCluster({ timeoutMs: 5000 }, def)
  const get = (id: string) => {
    const node = nodes.get(id)
    if (!node) throw new Error(`no node ${id}`)
    return node
  }
  return {
    nodes,
    def,
    token,
    transport,
    seeds: defs.map((d) => d.url),
    replica(id) {
      const def = defs.find((d) => d.id === id)
      if (!def) throw new Error(`no node ${id}`)
      return transport.node(def)
    },
    async connect(extra = {}) {
      const kv = await connect({ seeds: defs.map((d) => d.url), token, timeoutMs: 3000, requestTimeoutMs: 1000, detector: { probeIntervalMs: 100 }, ...extra })
      clients.push(kv)
      return kv
    },
    async kill(id) {
      await get(id).proc?.kill9()
      get(id).proc = null
    },
    async stop(id) {
      await get(id).proc?.stop('SIGTERM')
      get(id).proc = null
    },
    pause(id) {
      const pid = get(id).proc?.pid
      if (pid) process.kill(pid, 'SIGSTOP')
    },
    resume(id) {
      const pid = get(id).proc?.pid
      if (pid) process.kill(pid, 'SIGCONT')
    },
    async start(id, opts = {}) {
      const node = get(id)
      if (node.proc) throw new Error(`node ${id} is running`)
      if (opts.wipe) rmSync(node.dir, { recursive: true, force: true })
      const proc = await launch(node)
      // A wiped node has no cluster definition: install it, as an operator would.
      if (opts.wipe) await transport.node({ id, url: `http://127.0.0.1:${node.port}` }).putCluster({ timeoutMs: 5000 }, def)
      return proc
    },
    async close() {
      await Promise.all(clients.map((c) => c.close(500)))
      await transport.close()
      for (const n of nodes.values()) {
        if (n.proc) process.kill(n.proc.pid, 'SIGCONT')
      }
      await Promise.all([...nodes.values()].map((n) => n.proc?.kill9()))
      rmSync(root, { recursive: true, force: true })
    },
  }
}
