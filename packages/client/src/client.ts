import {
  type ClusterDef, type NodeDef, KvorumError, NodeUnavailableError, Ring, StaleMetadataError, TimeoutError,
  findStore, validateCluster,
} from '@kvorum/core'
import { type BatchOptions, NodeBatcher } from './batcher.js'
import { AntiEntropy, type RepairOptions, type RepairReport } from './anti-entropy.js'
import { FailureDetector, type FailureDetectorOptions } from './failure-detector.js'
import { type HandoffOptions, HandoffWorker } from './handoff.js'
import { HttpTransport } from './http-transport.js'
import { ClientMetrics, type MetricsSnapshot } from './metrics.js'
import type { Runtime } from './runtime.js'
import { InFlightWrites } from './in-flight.js'
import { Store, type StoreOptions } from './store.js'
import type { NodeClient, Transport } from './transport.js'

/** Options of `connect`. */
export interface ConnectOptions {
  /** Any node(s) of the cluster: URLs, or node definitions for the in-memory transport. */
  readonly seeds: readonly (string | NodeDef)[]
  /** Cluster token, sent as a bearer token. Default none. */
  readonly token?: string
  /** How nodes are reached. Default: HTTP with undici. */
  readonly transport?: Transport
  /** Deadline of a whole operation, ms. Default 3000. */
  readonly timeoutMs?: number
  /** Longest single node request, ms. Default 1000. */
  readonly requestTimeoutMs?: number
  /**
   * Reads ask r primaries and one more only if one fails or is slower than
   * `readSpeculateMs` (default), or every primary at once as Dynamo does
   * (`true`: more read repair, a third more read load).
   */
  readonly readFromAll?: boolean
  /** Ms before a read asks one more primary. Default 50. */
  readonly readSpeculateMs?: number
  /** Per-node coalescing of concurrent operations. */
  readonly batch?: BatchOptions
  /** Failure detection settings. */
  readonly detector?: FailureDetectorOptions
  /**
   * Map a node's advertised URL to the one this process should use (NAT,
   * proxies, tests that route through a fault proxy). Default: the URL as given.
   */
  readonly resolveUrl?: (node: NodeDef) => string
}

/** Stale-metadata retries of one operation before giving up. */
const MAX_REFRESH_RETRIES = 2

/**
 * A connection to a Kvorum cluster: holds the cluster definition and ring,
 * one failure detector, and per-node batchers; hands out typed stores.
 */
export class Kvorum implements Runtime {
  readonly metrics = new ClientMetrics()
  readonly detector: FailureDetector
  readonly timeoutMs: number
  readonly requestTimeoutMs: number
  readonly readFromAll: boolean
  readonly readSpeculateMs: number
  readonly inFlight = new InFlightWrites()
  private view: { cluster: ClusterDef; ring: Ring }
  private readonly batchers = new Map<string, NodeBatcher>()
  private readonly pending = new Set<Promise<unknown>>()
  private refreshing: Promise<void> | null = null
  private closed = false
  private handoff: HandoffWorker | undefined

  constructor(
    readonly transport: Transport,
    cluster: ClusterDef,
    private readonly options: ConnectOptions,
  ) {
    this.view = { cluster, ring: new Ring(cluster) }
    this.timeoutMs = options.timeoutMs ?? 3000
    this.requestTimeoutMs = options.requestTimeoutMs ?? 1000
    this.readFromAll = options.readFromAll ?? false
    this.readSpeculateMs = options.readSpeculateMs ?? 50
    this.detector = new FailureDetector(async (id) => {
      await this.client(id).health({ timeoutMs: this.requestTimeoutMs })
    }, options.detector)
    transport.onClusterVersion = (version) => {
      if (version > this.view.cluster.version) this.refreshSoon()
    }
  }

  get cluster(): ClusterDef {
    return this.view.cluster
  }

  get ring(): Ring {
    return this.view.ring
  }

  node(id: string): NodeDef {
    const def = this.view.cluster.nodes.find((n) => n.id === id)
    if (!def) throw new Error(`assertion failed: node ${id} is not in cluster version ${this.view.cluster.version}`)
    return this.options.resolveUrl ? { ...def, url: this.options.resolveUrl(def) } : def
  }

  client(id: string): NodeClient {
    return this.transport.node(this.node(id))
  }

  batcher(id: string): NodeBatcher {
    const def = this.node(id)
    const key = `${id}@${def.url}`
    let b = this.batchers.get(key)
    if (!b) {
      b = new NodeBatcher(id, this.transport.node(def), { requestTimeoutMs: this.requestTimeoutMs, ...this.options.batch }, {
        success: () => this.detector.success(id),
        failure: (e) => {
          // Only transport failures say the node is unwell; a refusal is an answer.
          if (e instanceof NodeUnavailableError) this.detector.failure(id, e.message, true)
          else if (e instanceof TimeoutError) this.detector.failure(id, e.message)
          else this.detector.success(id)
        },
        batch: (items) => {
          this.metrics.batches++
          this.metrics.batchedItems += items
        },
      })
      this.batchers.set(key, b)
    }
    return b
  }

  background(work: Promise<unknown>): void {
    const p = work.catch(() => undefined).finally(() => this.pending.delete(p))
    this.pending.add(p)
  }

  refreshSoon(): void {
    if (!this.refreshing && !this.closed) this.background(this.refresh())
  }

  /** Fetch the newest cluster definition any node holds and switch to it. */
  refresh(): Promise<void> {
    if (this.refreshing) return this.refreshing
    this.refreshing = (async () => {
      const answers = await Promise.allSettled(this.view.cluster.nodes.map((n) => this.client(n.id).getCluster({ timeoutMs: this.requestTimeoutMs })))
      let best = this.view.cluster
      for (const a of answers) if (a.status === 'fulfilled' && a.value && a.value.version > best.version) best = validateCluster(a.value)
      if (best !== this.view.cluster) {
        this.view = { cluster: best, ring: new Ring(best) }
        this.metrics.clusterRefreshes++
      }
    })().finally(() => {
      this.refreshing = null
    })
    return this.refreshing
  }

  /** Run an operation, refreshing the cluster definition and retrying when a node says ours is stale. */
  async withRefresh<T>(op: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const version = this.view.cluster.version
      try {
        return await op()
      } catch (e) {
        if (!(e instanceof StaleMetadataError) || attempt >= MAX_REFRESH_RETRIES) throw e
        await this.refresh()
        // Retry only with a newer definition than the one that failed (a refresh may already have run).
        if (this.view.cluster.version <= version) throw e
      }
    }
  }

  /** A typed handle on a store of the cluster. */
  store<T = Uint8Array>(name: string, options: StoreOptions<T> = {}): Store<T> {
    if (this.closed) throw new KvorumError('KV_CLOSED', 'this client is closed')
    findStore(this.view.cluster, name)
    return new Store<T>(this, name, options)
  }

  /** Start delivering hints to nodes that answer again, in this process. Stops with close(). */
  startHandoff(options: HandoffOptions = {}): HandoffWorker {
    if (!this.handoff) {
      this.handoff = new HandoffWorker(this, options)
      this.handoff.start()
    }
    return this.handoff
  }

  /** One Merkle anti-entropy pass: compare replicas, repair what differs, reap old tombstones. */
  repair(options: RepairOptions = {}): Promise<RepairReport> {
    return new AntiEntropy(this).repair(options)
  }

  /** What this client has done: latency per operation, repairs, hints, siblings. */
  stats(): MetricsSnapshot {
    return this.metrics.snapshot()
  }

  /** Up/down per node, as this process's failure detector sees it. */
  nodes(): { id: string; url: string; up: boolean; lastError: string }[] {
    const seen = new Map(this.detector.snapshot().map((s) => [s.node, s]))
    return this.view.cluster.nodes.map((n) => ({ id: n.id, url: n.url, up: seen.get(n.id)?.up ?? true, lastError: seen.get(n.id)?.lastError ?? '' }))
  }

  /** Wait (up to `graceMs`) for late replies and repairs, then release connections. */
  async close(graceMs = 2000): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.handoff?.stop()
    let timer: NodeJS.Timeout | undefined
    await Promise.race([Promise.all([...this.pending]), new Promise((r) => (timer = setTimeout(r, graceMs)))])
    clearTimeout(timer)
    this.detector.stop()
    await this.transport.close()
  }
}

/** Bootstrap from any seed: fetch the cluster definition and return a connected client. */
export async function connect(options: ConnectOptions): Promise<Kvorum> {
  if (options.seeds.length === 0) throw new KvorumError('KV_INVALID_INPUT', 'connect needs at least one seed URL')
  const transport = options.transport ?? new HttpTransport(options.token ? { token: options.token } : {})
  const errors: string[] = []
  for (const seed of options.seeds) {
    const def: NodeDef = typeof seed === 'string' ? { id: 'seed', url: seed.replace(/\/+$/, '') } : seed
    try {
      const cluster = await transport.node(def).getCluster({ timeoutMs: options.requestTimeoutMs ?? 1000 })
      if (cluster) return new Kvorum(transport, validateCluster(cluster), options)
      errors.push(`${def.url}: no cluster definition yet (run kvorum cluster init)`)
    } catch (e) {
      errors.push(`${def.url}: ${(e as Error).message}`)
    }
  }
  await transport.close()
  throw new KvorumError('KV_BOOTSTRAP_FAILED', `could not fetch the cluster definition from any seed: ${errors.join('; ')}`)
}
