import { type ClusterDef, type NodeDef, Ring, StaleMetadataError, validateCluster } from '@kvorum/core'
import type { Background } from './background.js'
import { CHANNELS, publish } from './events.js'
import type { NodeClient, Transport } from './transport.js'

/** Stale-metadata retries of one operation before giving up. */
export const MAX_REFRESH_RETRIES = 2

/**
 * This client's view of the cluster: the definition, its ring, and how both
 * move forward (a newer version reported by a node, a stale-metadata answer).
 */
export class ClusterView {
  private current: { cluster: ClusterDef; ring: Ring }
  private refreshing: Promise<void> | null = null
  private stopped = false
  /** Definitions switched to after the first. */
  refreshes = 0

  constructor(
    private readonly client: object,
    readonly transport: Transport,
    cluster: ClusterDef,
    private readonly resolveUrl: ((node: NodeDef) => string) | undefined,
    private readonly requestTimeoutMs: number,
    private readonly background: Background,
  ) {
    this.current = { cluster, ring: new Ring(cluster) }
  }

  get cluster(): ClusterDef {
    return this.current.cluster
  }

  get ring(): Ring {
    return this.current.ring
  }

  /** A node of the current definition, with its URL as this process reaches it. */
  node(id: string): NodeDef {
    const def = this.current.cluster.nodes.find((n) => n.id === id)
    if (!def) throw new Error(`assertion failed: node ${id} is not in cluster version ${this.current.cluster.version}`)
    return this.resolveUrl ? { ...def, url: this.resolveUrl(def) } : def
  }

  /** The protocol client of a node. */
  nodeClient(id: string): NodeClient {
    return this.transport.node(this.node(id))
  }

  /** Fetch the newest definition any node holds and switch to it (one fetch at a time). */
  refresh(): Promise<void> {
    if (this.refreshing) return this.refreshing
    this.refreshing = (async () => {
      const answers = await Promise.allSettled(this.current.cluster.nodes.map((n) => this.nodeClient(n.id).getCluster({ timeoutMs: this.requestTimeoutMs })))
      let best = this.current.cluster
      for (const a of answers) if (a.status === 'fulfilled' && a.value && a.value.version > best.version) best = validateCluster(a.value)
      if (best !== this.current.cluster) {
        this.current = { cluster: best, ring: new Ring(best) }
        this.refreshes++
        publish(CHANNELS.cluster, () => ({ client: this.client, version: best.version }))
      }
    })().finally(() => {
      this.refreshing = null
    })
    return this.refreshing
  }

  /** Start a refresh in the background unless one runs (or the client closed). */
  refreshSoon(): void {
    if (!this.refreshing && !this.stopped) this.background.run('cluster-refresh', this.refresh())
  }

  /** No more background refreshes (the client is closing). */
  stop(): void {
    this.stopped = true
  }

  /**
   * Run an operation, refreshing the definition and running it again when a
   * node says ours is stale (at most MAX_REFRESH_RETRIES times). The caller's
   * deadline is inside `op`: a retry does not get a new one.
   */
  async withRefresh<T>(op: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const version = this.current.cluster.version
      try {
        return await op()
      } catch (e) {
        if (!(e instanceof StaleMetadataError) || attempt >= MAX_REFRESH_RETRIES) throw e
        await this.refresh()
        // Retry only with a newer definition than the one that failed (a refresh may already have run).
        if (this.current.cluster.version <= version) throw e
      }
    }
  }
}
