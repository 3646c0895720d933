import {
  type ClusterDef,
  type MembershipChange,
  type MembershipPlan,
  type NodeDef,
  type Ring,
  type StoreDef,
  type StoreSettings,
  BootstrapFailedError,
  ClientClosedError,
  InvalidInputError,
  NodeUnavailableError,
  TimeoutError,
  UnauthorizedError,
  alterStore,
  createStore,
  findStore,
  planChange,
  planInProgress,
  planReplicaChange,
  realTime,
  validateCluster,
} from '@kvorum/core'
import { AntiEntropy, type RepairOptions, type RepairReport } from './anti-entropy.js'
import { Background } from './background.js'
import { checkAborted, untilAborted } from './call.js'
import { ClusterView } from './cluster-view.js'
import { ClientEvents, type Listener } from './emitter.js'
import type { ClientEventName } from './events.js'
import { type HandoffOptions, HandoffWorker } from './handoff.js'
import { HttpTransport } from './http-transport.js'
import { InFlightWrites } from './in-flight.js'
import { ClientMetrics, type MetricsSnapshot } from './metrics.js'
import { NodePool } from './node-pool.js'
import { CONNECT_DEFAULTS, type ConnectOptions, settingsOf, transportOptionsOf } from './options.js'
import type { Runtime } from './runtime.js'
import type { RebalanceOptions } from './rebalance-options.js'
import { Rebalancer } from './rebalance.js'
import type { Codec, CodecName, JsonValue } from './codecs.js'
import { type HandleSettings, Store, type StoreOptions } from './store.js'
import type { Transport } from './transport.js'

/** How long close() waits for late replies and repairs by default, ms. */
export const CLOSE_GRACE_MS = 2000

/** What `kv.nodes()` tells of each node. */
export interface NodeView {
  readonly id: string
  readonly url: string
  readonly up: boolean
  readonly lastError: string
}

/** The parts behind a façade; tests and tools reach them through `@kvorum/client/testing`. */
export const runtimes = new WeakMap<Kvorum, Runtime>()

/**
 * A connection to a Kvorum cluster: hands out typed stores, and runs hint
 * delivery and repair on request. The work is done by parts passed to each
 * other explicitly (the cluster view, the node pool, the background work);
 * this class only wires them and is the public face.
 */
export class Kvorum {
  readonly #rt: Runtime
  #handoff: HandoffWorker | undefined

  /** Use `connect`, which fetches the cluster definition first. */
  constructor(transport: Transport, cluster: ClusterDef, options: ConnectOptions) {
    const time = options.time ?? realTime
    const settings = settingsOf(options)
    const events = new ClientEvents(this)
    const metrics = new ClientMetrics(events)
    const background = new Background(events, time)
    const view = new ClusterView(events, transport, cluster, options.resolveUrl, settings.requestTimeoutMs, background, time)
    const nodes = new NodePool(
      events,
      view,
      metrics,
      time,
      { ...options.batch, requestTimeoutMs: options.batch?.requestTimeoutMs ?? settings.requestTimeoutMs },
      options.detector,
    )
    this.#rt = { view, nodes, background, metrics, events, inFlight: new InFlightWrites(time), time, settings, client: this, state: { closed: false } }
    runtimes.set(this, this.#rt)
    transport.onClusterVersion = (version) => view.noteVersion(version)
    view.startPolling(settings.pollIntervalMs)
  }

  /** The cluster definition this client works with (it moves forward as nodes report newer ones). */
  get cluster(): ClusterDef {
    return this.#rt.view.cluster
  }

  /** The partition ring of that definition. */
  get ring(): Ring {
    return this.#rt.view.ring
  }

  /**
   * A typed handle on a store of the cluster; the codec fixes the value type:
   * `bytes` (default) Uint8Array, `utf8` string, `json` a JSON value (or the
   * type you name, `store<Cart>(name, { codec: 'json' })`), a custom codec its own.
   */
  store<T extends Uint8Array = Uint8Array>(name: string, options?: HandleSettings<T> & { readonly codec?: 'bytes' | undefined }): Store<T>
  store<T extends string = string>(name: string, options: HandleSettings<T> & { readonly codec: 'utf8' }): Store<T>
  store<T = JsonValue>(name: string, options: HandleSettings<T> & { readonly codec: 'json' }): Store<T>
  store<T>(name: string, options: HandleSettings<T> & { readonly codec: Codec<T> }): Store<T>
  /** A codec chosen at run time (e.g. from a flag): values are whatever that codec takes and gives. */
  store(name: string, options: HandleSettings<unknown> & { readonly codec: CodecName | undefined }): Store<unknown>
  store<T>(name: string, options: StoreOptions<T> = {}): Store<T> {
    this.#open()
    findStore(this.#rt.view.cluster, name)
    return new Store<T>(this.#rt, name, options)
  }

  /** Refuse work once close() was called: nothing may reopen the connections close() released. */
  #open(): void {
    if (this.#rt.state.closed) throw new ClientClosedError()
  }

  /** Plan a change of the cluster's nodes from the definition this client holds. Changes nothing. */
  planChange(change: MembershipChange): MembershipPlan {
    return planChange(this.#rt.view.cluster, change)
  }

  /** Plan a change of a store's n (run it with `rebalance`): its replicas move as in a membership change. Changes nothing. */
  planReplicaChange(store: string, n: number): MembershipPlan {
    return planReplicaChange(this.#rt.view.cluster, store, n)
  }

  /**
   * Run a membership change to its end (MEMBERSHIP.md): stage by stage,
   * copying what moves, with progress through `options.onProgress`. Without a
   * plan, resumes the one in progress. Safe to run again after any failure or
   * kill: the plan and its stage live in the cluster definition.
   */
  async rebalance(plan?: MembershipPlan, options: RebalanceOptions = {}): Promise<ClusterDef> {
    this.#open()
    checkAborted(options.signal, 'rebalance')
    const run = this.#rt.view.refresh().then(() => new Rebalancer(this.#rt, options).run(plan ?? planInProgress(this.#rt.view.cluster)))
    return untilAborted(run, options.signal, 'rebalance')
  }

  /** End the membership change in progress before its switch, with nothing lost; the old replicas serve again. */
  async abortRebalance(options: RebalanceOptions = {}): Promise<ClusterDef> {
    this.#open()
    checkAborted(options.signal, 'abortRebalance')
    return untilAborted(new Rebalancer(this.#rt, options).abort(), options.signal, 'abortRebalance')
  }

  /** Add a store to the cluster (on every node; a node that is down makes it fail, and running it again finishes it). */
  async createStore(store: Partial<StoreDef> & { name: string }, options: RebalanceOptions = {}): Promise<ClusterDef> {
    this.#open()
    checkAborted(options.signal, 'createStore')
    return untilAborted(
      new Rebalancer(this.#rt, options).change((def) => createStore(def, store)),
      options.signal,
      'createStore',
    )
  }

  /** Change a store's quorums, limits, conflict mode or tombstone grace; they apply from each node's next request. */
  async alterStore(name: string, settings: StoreSettings, options: RebalanceOptions = {}): Promise<ClusterDef> {
    this.#open()
    checkAborted(options.signal, 'alterStore')
    return untilAborted(
      new Rebalancer(this.#rt, options).change((def) => alterStore(def, name, settings)),
      options.signal,
      'alterStore',
    )
  }

  /** The cluster version every node of the definition holds (null when it answered with none) and the key and value bytes it stores, or why it did not answer. */
  async clusterVersions(
    options: { readonly signal?: AbortSignal | undefined } = {},
  ): Promise<{ id: string; url: string; version: number | null; bytes?: number; error?: string }[]> {
    this.#open()
    checkAborted(options.signal, 'clusterVersions')
    return untilAborted(this.#versions(), options.signal, 'clusterVersions')
  }

  async #versions(): Promise<{ id: string; url: string; version: number | null; bytes?: number; error?: string }[]> {
    await this.#rt.view.refresh()
    const t = { timeoutMs: this.#rt.settings.requestTimeoutMs }
    return Promise.all(
      this.#rt.view.cluster.nodes.map(async (n) => {
        try {
          const held = await this.#rt.view.transport.node(n).health(t)
          const version = held.clusterVersion > 0 ? held.clusterVersion : null
          return held.bytes === undefined ? { id: n.id, url: n.url, version } : { id: n.id, url: n.url, version, bytes: held.bytes }
        } catch (e) {
          return { id: n.id, url: n.url, version: null, error: (e as Error).message }
        }
      }),
    )
  }

  /** Start delivering hints to nodes that answer again, in this process. Stops with close(). */
  startHandoff(options: HandoffOptions = {}): HandoffWorker {
    this.#open()
    if (!this.#handoff) {
      this.#handoff = new HandoffWorker(this.#rt, options)
      this.#handoff.start()
    }
    return this.#handoff
  }

  /** One Merkle anti-entropy pass: compare replicas, repair what differs, reap old tombstones. */
  async repair(options: RepairOptions = {}): Promise<RepairReport> {
    this.#open()
    checkAborted(options.signal, 'repair')
    // First carry the newest definition to nodes that lag or hold none (a wiped node gets its
    // data from the pass, and its definition from here), so the pass and later clients find it.
    const pass = this.#rt.view.refresh().then(() => new AntiEntropy(this.#rt).repair(options))
    return untilAborted(pass, options.signal, 'repair')
  }

  /** What this client has done: latency per operation, repairs, hints, siblings, background failures; per node latency and queue depth. */
  stats(): MetricsSnapshot {
    const { metrics, view, background, nodes } = this.#rt
    metrics.clusterRefreshes = view.refreshes
    metrics.staleRefusals = view.staleRefusals
    return metrics.snapshot(background, nodes.nodeStats())
  }

  /**
   * Call `listener` with each `event` (see ClientEventMap), synchronously. A listener that
   * throws or rejects is counted and reported as a `backgroundError`, never to the SDK.
   */
  on<E extends ClientEventName>(event: E, listener: Listener<E>): this {
    this.#rt.events.on(event, listener)
    return this
  }

  /** Stop calling `listener` with `event`. */
  off<E extends ClientEventName>(event: E, listener: Listener<E>): this {
    this.#rt.events.off(event, listener)
    return this
  }

  /** Up/down per node, as this process's failure detector sees it. */
  nodes(): NodeView[] {
    const seen = new Map(this.#rt.nodes.detector.snapshot().map((s) => [s.node, s]))
    return this.#rt.view.cluster.nodes.map((n) => ({ id: n.id, url: n.url, up: seen.get(n.id)?.up ?? true, lastError: seen.get(n.id)?.lastError ?? '' }))
  }

  /** Wait (up to `graceMs`) for late replies and repairs, then release connections. */
  async close(graceMs = CLOSE_GRACE_MS): Promise<void> {
    const rt = this.#rt
    if (rt.state.closed) return
    rt.state.closed = true
    rt.view.stop()
    await this.#handoff?.stop()
    await rt.background.drain(graceMs)
    rt.nodes.stop()
    await rt.view.transport.close()
  }
}

/**
 * Bootstrap from any seed: fetch the cluster definition and return a
 * connected client. With `options.signal`, an abort rejects at once with
 * KV_ABORTED, and a client that connects after it is closed, never handed out.
 */
export async function connect(options: ConnectOptions): Promise<Kvorum> {
  const { signal } = options
  if (!signal) return bootstrap(options)
  checkAborted(signal, 'connect')
  const connecting = bootstrap(options)
  connecting.then(
    (kv) => (signal.aborted ? kv.close(0) : undefined),
    () => undefined,
  )
  return untilAborted(connecting, signal, 'connect')
}

async function bootstrap(options: ConnectOptions): Promise<Kvorum> {
  if (options.seeds.length === 0) throw new InvalidInputError('connect needs at least one seed URL')
  const transport = options.transport ?? new HttpTransport(transportOptionsOf(options))
  const errors: string[] = []
  let refused = 0
  let answered = 0
  for (const seed of options.seeds) {
    const def: NodeDef = typeof seed === 'string' ? { id: 'seed', url: seed.replace(/\/+$/, '') } : seed
    try {
      const cluster = await transport.node(def).getCluster({ timeoutMs: options.requestTimeoutMs ?? CONNECT_DEFAULTS.requestTimeoutMs })
      if (cluster) return new Kvorum(transport, validateCluster(cluster), options)
      answered++
      errors.push(`${def.url}: no cluster definition yet (run kvorum cluster init)`)
    } catch (e) {
      if (e instanceof UnauthorizedError) refused++
      if (!(e instanceof NodeUnavailableError || e instanceof TimeoutError)) answered++
      errors.push(`${def.url}: ${(e as Error).message}`)
    }
  }
  await transport.close()
  // Every seed that answered refused the token (the others were unreachable): the token is wrong, not the cluster.
  if (refused > 0 && refused === answered)
    throw new UnauthorizedError(`the seeds refused the token: check that it is the cluster's token (${errors.join('; ')})`)
  throw new BootstrapFailedError(`could not fetch the cluster definition from any seed: ${errors.join('; ')}`)
}
