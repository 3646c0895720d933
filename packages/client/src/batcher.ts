import { type CoordinateItem, type CoordinateResult, type HintItem, type ItemResult, type KeySet, type SiblingSet, type StoreBatch, type StoreBatchResults, KvorumError, NodeUnavailableError, sizeHint } from '@kvorum/core'
import type { NodeClient } from './transport.js'

/** Options of per-node coalescing. */
export interface BatchOptions {
  /** Items per batch request. Default 256. */
  readonly maxBatchItems?: number
  /** About this many bytes of keys and values per batch request (one larger item still goes alone). Default 8 MiB. */
  readonly maxBatchBytes?: number
  /**
   * Requests in flight to one node at once; further items wait and coalesce
   * into the next batch. Default 1: under load the batches grow instead (18
   * operations per request in workload A at concurrency 64, against 6 with 4
   * in flight), which costs the node and the client less per operation.
   */
  readonly maxInFlightPerNode?: number
  /** Items waiting for one node before new ones are refused. Default 20,000. */
  readonly maxQueuedPerNode?: number
  /** Longest a single request may take, ms. Default 1000. */
  readonly requestTimeoutMs?: number
}

interface Pending<I, R> {
  readonly item: I
  readonly deadline: number
  readonly resolve: (r: R) => void
  readonly reject: (e: unknown) => void
}

/** How much one batch may carry; `taken` counts the items already in it. */
interface Budget {
  items: number
  bytes: number
  taken: number
}

/** Items waiting for one endpoint of a node, and how a batch of them is sent. */
interface Lane {
  readonly size: number
  /** Take items out within `budget` (failing those past their deadline) and send them; null when none is left. */
  send(budget: Budget, now: number, requestTimeoutMs: number): { items: number; done: Promise<void> } | null
}

/**
 * Take items off the front of `queue` while they fit in `budget`, at most
 * `limit` of them. An item larger than the whole byte budget still goes, but
 * only alone in an empty batch.
 */
function take<P>(queue: P[], budget: Budget, size: (p: P) => number, limit = Infinity): P[] {
  let n = 0
  while (n < queue.length && n < limit && budget.items > 0) {
    const bytes = size(queue[n] as P)
    if (bytes > budget.bytes && budget.taken > 0) break
    budget.items--
    budget.bytes -= bytes
    budget.taken++
    n++
  }
  return queue.splice(0, n)
}

/** Pendings still before their deadline; the others fail now, as never sent (nothing of them reached the node). */
function live<P extends { deadline: number; reject: (e: unknown) => void }>(batch: P[], now: number, node: string): P[] {
  return batch.filter((p) => {
    if (p.deadline > now) return true
    p.reject(new NodeUnavailableError(node, 'the operation\'s deadline passed while it waited for a request to this node (it was never sent)'))
    return false
  })
}

/** A node answered with another number of results than it was sent items: nothing in the answer can be trusted. */
function countMismatch(node: string, what: string, got: number, sent: number): NodeUnavailableError {
  return new NodeUnavailableError(node, `answered ${got} ${what} results for ${sent} items`, { mayHaveApplied: true })
}

function timeoutFor(pendings: readonly { deadline: number }[], now: number, requestTimeoutMs: number): number {
  let latest = 0
  for (const p of pendings) latest = Math.max(latest, p.deadline - now)
  return Math.min(requestTimeoutMs, latest)
}

/** Items of one kind for one endpoint (hints for one target). */
class SimpleLane<I, R> implements Lane {
  private queue: Pending<I, R>[] = []
  constructor(
    private readonly node: string,
    private readonly request: (timeoutMs: number, items: I[]) => Promise<R[]>,
    private readonly sizeOf: (item: I) => number,
  ) {}

  get size(): number {
    return this.queue.length
  }

  push(p: Pending<I, R>): void {
    this.queue.push(p)
  }

  send(budget: Budget, now: number, requestTimeoutMs: number) {
    const batch = live(take(this.queue, budget, (p) => this.sizeOf(p.item)), now, this.node)
    if (batch.length === 0) return null
    const done = this.request(timeoutFor(batch, now, requestTimeoutMs), batch.map((p) => p.item)).then(
      (results) => {
        if (results.length !== batch.length) throw countMismatch(this.node, 'hint', results.length, batch.length)
        batch.forEach((p, i) => p.resolve(results[i] as R))
      },
    ).then(
      () => undefined,
      (error) => {
        for (const p of batch) p.reject(error)
        throw error
      },
    )
    return { items: batch.length, done }
  }
}

/**
 * Reads, coordinate-puts and merges for one store: they leave together as one
 * store batch, so a node gets one request (and one group commit) for all of
 * them instead of one per kind.
 */
class StoreLane implements Lane {
  readonly gets: Pending<Uint8Array, ItemResult<SiblingSet>>[] = []
  readonly coordinates: Pending<CoordinateItem, ItemResult<CoordinateResult>>[] = []
  readonly merges: Pending<KeySet, ItemResult<null>>[] = []
  constructor(
    private readonly node: string,
    private readonly request: (timeoutMs: number, batch: StoreBatch) => Promise<StoreBatchResults>,
  ) {}

  get size(): number {
    return this.gets.length + this.coordinates.length + this.merges.length
  }

  send(budget: Budget, now: number, requestTimeoutMs: number) {
    // Each kind first gets up to a third of the items, so none starves the others; what is
    // left goes to writes first (a put waits on its coordinate-put before anything else).
    const share = Math.ceil(budget.items / 3)
    const coordinateSize = (p: { item: CoordinateItem }) => 64 + p.item.key.length + (p.item.value?.length ?? 0)
    const mergeSize = (p: { item: KeySet }) => p.item.key.length + sizeHint(p.item.siblings)
    const getSize = (p: { item: Uint8Array }) => 8 + p.item.length
    const c = take(this.coordinates, budget, coordinateSize, share)
    const m = take(this.merges, budget, mergeSize, share)
    const g = take(this.gets, budget, getSize, share)
    c.push(...take(this.coordinates, budget, coordinateSize))
    m.push(...take(this.merges, budget, mergeSize))
    g.push(...take(this.gets, budget, getSize))
    const coordinates = live(c, now, this.node)
    const merges = live(m, now, this.node)
    const gets = live(g, now, this.node)
    const items = coordinates.length + merges.length + gets.length
    if (items === 0) return null
    const all = [...coordinates, ...merges, ...gets]
    const done = this.request(timeoutFor(all, now, requestTimeoutMs), { keys: gets.map((p) => p.item), coordinates: coordinates.map((p) => p.item), merges: merges.map((p) => p.item) }).then(
      (res) => {
        if (res.coordinates.length !== coordinates.length) throw countMismatch(this.node, 'coordinate', res.coordinates.length, coordinates.length)
        if (res.merges.length !== merges.length) throw countMismatch(this.node, 'merge', res.merges.length, merges.length)
        if (res.gets.length !== gets.length) throw countMismatch(this.node, 'get', res.gets.length, gets.length)
        coordinates.forEach((p, i) => p.resolve(res.coordinates[i] as ItemResult<CoordinateResult>))
        merges.forEach((p, i) => p.resolve(res.merges[i] as ItemResult<null>))
        gets.forEach((p, i) => p.resolve(res.gets[i] as ItemResult<SiblingSet>))
      },
    ).then(
      () => undefined,
      (error) => {
        for (const p of all) p.reject(error)
        throw error
      },
    )
    return { items, done }
  }
}

/**
 * Coalesces concurrent operations bound for one node into its batch
 * endpoints. At most `maxInFlightPerNode` requests are in flight; while they
 * are, new items queue up and leave together as the next batch, so under load
 * one HTTP request carries many operations (reads and writes of a store
 * together).
 */
export class NodeBatcher {
  private readonly lanes = new Map<string, Lane>()
  private inFlight = 0
  private queued = 0
  private scheduled = false
  private readonly maxBatch: number
  private readonly maxBatchBytes: number
  private readonly maxInFlight: number
  private readonly maxQueued: number
  private readonly requestTimeoutMs: number

  constructor(
    /** The node's id, for errors. */
    private readonly node: string,
    private readonly client: NodeClient,
    options: BatchOptions,
    private readonly report: { success: () => void; failure: (e: unknown) => void; batch: (items: number) => void },
  ) {
    this.maxBatch = options.maxBatchItems ?? 256
    this.maxBatchBytes = options.maxBatchBytes ?? 8 * 1024 * 1024
    this.maxInFlight = options.maxInFlightPerNode ?? 1
    this.maxQueued = options.maxQueuedPerNode ?? 20_000
    this.requestTimeoutMs = options.requestTimeoutMs ?? 1000
  }

  coordinate(store: string, item: CoordinateItem, deadline: number): Promise<ItemResult<CoordinateResult>> {
    return this.enqueue((p) => this.storeLane(store).coordinates.push(p), item, deadline)
  }

  merge(store: string, item: KeySet, deadline: number): Promise<ItemResult<null>> {
    return this.enqueue((p) => this.storeLane(store).merges.push(p), item, deadline)
  }

  get(store: string, key: Uint8Array, deadline: number): Promise<ItemResult<SiblingSet>> {
    return this.enqueue((p) => this.storeLane(store).gets.push(p), key, deadline)
  }

  hint(target: string, item: HintItem, deadline: number): Promise<ItemResult<null>> {
    const id = `h:${target}`
    let lane = this.lanes.get(id) as SimpleLane<HintItem, ItemResult<null>> | undefined
    if (!lane) {
      lane = new SimpleLane(this.node, (t, items) => this.client.putHints({ timeoutMs: t }, target, items), (it) => it.store.length + it.key.length + sizeHint(it.siblings))
      this.lanes.set(id, lane)
    }
    const hints = lane
    return this.enqueue((p) => hints.push(p), item, deadline)
  }

  private storeLane(store: string): StoreLane {
    const id = `s:${store}`
    let lane = this.lanes.get(id) as StoreLane | undefined
    if (!lane) {
      lane = new StoreLane(this.node, (t, batch) => this.client.batch({ timeoutMs: t }, store, batch))
      this.lanes.set(id, lane)
    }
    return lane
  }

  private enqueue<I, R>(push: (p: Pending<I, R>) => void, item: I, deadline: number): Promise<R> {
    if (this.queued >= this.maxQueued) {
      return Promise.reject(new KvorumError('KV_CLIENT_OVERLOADED', `${this.queued} operations already wait for this node; slow down or raise maxQueuedPerNode`))
    }
    return new Promise<R>((resolve, reject) => {
      push({ item, deadline, resolve, reject })
      this.queued++
      this.schedule()
    })
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight) return
    this.scheduled = true
    // setImmediate lets every operation started in this turn join the batch.
    setImmediate(() => {
      this.scheduled = false
      this.pump()
    })
  }

  /** Send from the lanes while slots are free; a lane that sent goes to the back, so no lane starves another. */
  private pump(): void {
    for (let tried = 0; tried < this.lanes.size && this.inFlight < this.maxInFlight; ) {
      const [id, lane] = this.lanes.entries().next().value as [string, Lane]
      this.lanes.delete(id)
      this.lanes.set(id, lane)
      if (lane.size > 0) {
        this.flush(lane)
        tried = 0
      } else {
        tried++
      }
    }
  }

  private flush(lane: Lane): void {
    const before = lane.size
    const sent = lane.send({ items: this.maxBatch, bytes: this.maxBatchBytes, taken: 0 }, Date.now(), this.requestTimeoutMs)
    this.queued -= before - lane.size
    if (!sent) return
    this.inFlight++
    this.report.batch(sent.items)
    sent.done.then(
      () => this.report.success(),
      (error) => this.report.failure(error),
    ).finally(() => {
      this.inFlight--
      this.pump()
    })
  }
}
