import { type ClusterDef, type NodeDef, type Ring, type Time, type TimerHandle, Placement, StaleMetadataError, validateCluster } from '@kvorum/core'
import type { Background } from './background.js'
import type { ClientEvents } from './emitter.js'
import type { NodeClient, Transport } from './transport.js'

/** Least time between refreshes started because a node answered with an older definition, ms. */
export const LAG_REFRESH_MS = 1000

/**
 * Stale-metadata retries of one operation before giving up (each after a
 * refresh, all within the operation's one deadline). A membership step moves
 * through four versions in a few seconds, so an operation can meet more than
 * one of them: 2 retries let a few in 100,000 operations of a benchmark fail
 * with KV_STALE_METADATA during a move.
 */
export const MAX_REFRESH_RETRIES = 6

/**
 * This client's view of the cluster: the definition, its ring, and how both
 * move forward (a newer version reported by a node, a stale-metadata answer).
 */
export class ClusterView {
  private current: { cluster: ClusterDef; placement: Placement }
  private refreshing: Promise<string[]> | null = null
  private stopped = false
  private poll: TimerHandle | undefined
  private lastLagRefresh = -Infinity
  /** Nodes of earlier definitions, by id (bounded by the cluster's node limit). */
  private readonly seen = new Map<string, NodeDef>()
  /** Definitions switched to after the first. */
  refreshes = 0
  /** Operations and merges a node refused as routed under an older definition (then refreshed and retried). */
  staleRefusals = 0

  constructor(
    private readonly events: ClientEvents,
    readonly transport: Transport,
    cluster: ClusterDef,
    private readonly resolveUrl: ((node: NodeDef) => string) | undefined,
    private readonly requestTimeoutMs: number,
    private readonly background: Background,
    private readonly time: Time,
  ) {
    this.current = { cluster, placement: new Placement(cluster) }
  }

  get cluster(): ClusterDef {
    return this.current.cluster
  }

  /** Who serves each partition under the definition (move stages included). */
  get placement(): Placement {
    return this.current.placement
  }

  /** The partition ring of the definition's assignment. */
  get ring(): Ring {
    return this.current.placement.ring
  }

  /**
   * A node of the current definition, with its URL as this process reaches
   * it; or one of an earlier definition (work in flight may still name a node
   * a newer definition removed).
   */
  node(id: string): NodeDef {
    const def = this.current.cluster.nodes.find((n) => n.id === id) ?? this.seen.get(id)
    if (!def) throw new Error(`assertion failed: node ${id} is not in cluster version ${this.current.cluster.version}`)
    return this.resolveUrl ? { ...def, url: this.resolveUrl(def) } : def
  }

  /** The protocol client of a node. */
  nodeClient(id: string): NodeClient {
    return this.transport.node(this.node(id))
  }

  /**
   * Fetch every node's definition, switch to the newest, and hand it to each
   * node that answered with an older one or none (a new, wiped or replaced
   * node): nodes never talk to each other, so clients carry definitions.
   * One refresh at a time. Returns the nodes the definition was pushed to.
   */
  refresh(): Promise<string[]> {
    if (this.refreshing) return this.refreshing
    this.refreshing = (async () => {
      const nodes = this.current.cluster.nodes
      const answers = await Promise.allSettled(nodes.map((n) => this.nodeClient(n.id).getCluster({ timeoutMs: this.requestTimeoutMs })))
      let best = this.current.cluster
      for (const a of answers) if (a.status === 'fulfilled' && a.value && a.value.version > best.version) best = validateCluster(a.value)
      if (best !== this.current.cluster) this.switchTo(best)
      const lagging = nodes.filter((n, i) => {
        const a = answers[i]
        return a?.status === 'fulfilled' && (a.value === null || a.value.version < best.version) && best.nodes.some((b) => b.id === n.id)
      })
      const pushed = await Promise.allSettled(lagging.map((n) => this.nodeClient(n.id).putCluster({ timeoutMs: this.requestTimeoutMs }, best)))
      return lagging.filter((_, i) => pushed[i]?.status === 'fulfilled').map((n) => n.id)
    })().finally(() => {
      this.refreshing = null
    })
    return this.refreshing
  }

  private switchTo(def: ClusterDef): void {
    const previousVersion = this.current.cluster.version
    for (const n of this.current.cluster.nodes) this.seen.set(n.id, n)
    this.current = { cluster: def, placement: new Placement(def) }
    this.refreshes++
    this.events.emit('clusterChanged', () => ({ version: def.version, previousVersion, nodes: def.nodes.map((n) => n.id) }))
  }

  /**
   * A node answered carrying its definition version: a newer one than ours
   * means refresh; an older one (0: none at all) means it needs ours.
   */
  noteVersion(version: number): void {
    const ours = this.current.cluster.version
    if (version > ours) {
      this.refreshSoon()
      return
    }
    // A node that stays behind (it refuses the push, or is restarted empty again) must not
    // turn every answer into a refresh: carry the definition to laggards at most this often.
    if (version < ours && this.time.monotonicMs() - this.lastLagRefresh >= LAG_REFRESH_MS) {
      this.lastLagRefresh = this.time.monotonicMs()
      this.refreshSoon()
    }
  }

  /** Start a refresh in the background unless one runs (or the client closed). */
  refreshSoon(): void {
    if (!this.refreshing && !this.stopped) this.background.run('cluster-refresh', this.refresh())
  }

  /**
   * Refresh every `intervalMs` (unref'd), so an idle client still learns of a
   * new definition and still carries it to lagging nodes. 0 disables.
   */
  startPolling(intervalMs: number): void {
    if (intervalMs <= 0 || this.stopped) return
    const tick = () => {
      if (this.stopped) return
      this.refreshSoon()
      this.poll = this.time.setTimeout(tick, intervalMs, true)
    }
    this.poll = this.time.setTimeout(tick, intervalMs, true)
  }

  /** No more background refreshes (the client is closing). */
  stop(): void {
    this.stopped = true
    this.time.clearTimeout(this.poll)
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
        if (!(e instanceof StaleMetadataError)) throw e
        this.staleRefusals++
        if (attempt >= MAX_REFRESH_RETRIES) throw e
        await this.refresh()
        // Retry with a newer definition than the one that failed, or when the refusing node is not
        // ahead of us: then a batch carried an older routing of another item beside ours.
        if (this.current.cluster.version <= version && e.clusterVersion > this.current.cluster.version) throw e
      }
    }
  }
}
