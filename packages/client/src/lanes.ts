import {
  type CoordinateItem,
  type CoordinateResult,
  type HintItem,
  type ItemResult,
  type KeySet,
  type SiblingSet,
  type StoreBatch,
  type StoreBatchResults,
  AbortedError,
  NodeUnavailableError,
  assert,
  sizeHint,
} from '@kvorum/core'

/**
 * The queues of one node's batcher: a store lane (reads, coordinate-puts and
 * merges of one store, sent together as one store batch) and a hint lane per
 * target. A lane takes what fits in a batch's budget and sends it; the
 * batcher decides when.
 */

export interface Pending<I, R> {
  readonly item: I
  readonly deadline: number
  /** The cluster version the item was routed with (0 for hints, which are not fenced). */
  readonly version: number
  /** The caller's signal, if any: an aborted item is not sent. */
  readonly signal: AbortSignal | undefined
  readonly resolve: (r: R) => void
  readonly reject: (e: unknown) => void
}

/** How much one batch may carry; `taken` counts the items already in it. */
export interface Budget {
  items: number
  bytes: number
  taken: number
}

/** Items waiting for one endpoint of a node, and how a batch of them is sent. */
export interface Lane {
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
  assert(budget.items >= 0 && budget.taken >= 0, 'a batch budget never goes below zero')
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

/** Pendings still before their deadline and not aborted; the others fail now, as never sent (nothing of them reached the node). */
function live<P extends { deadline: number; signal: AbortSignal | undefined; reject: (e: unknown) => void }>(batch: P[], now: number, node: string): P[] {
  return batch.filter((p) => {
    if (p.signal?.aborted) {
      p.reject(new AbortedError(`a request to ${node} (never sent)`, p.signal.reason))
      return false
    }
    if (p.deadline > now) return true
    p.reject(new NodeUnavailableError(node, "the operation's deadline passed while it waited for a request to this node (it was never sent)"))
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

/** Hints for one target node, sent as one putHints request. */
export class HintLane implements Lane {
  private queue: Pending<HintItem, ItemResult<null>>[] = []
  constructor(
    private readonly node: string,
    private readonly request: (timeoutMs: number, items: HintItem[]) => Promise<ItemResult<null>[]>,
  ) {}

  get size(): number {
    return this.queue.length
  }

  push(p: Pending<HintItem, ItemResult<null>>): void {
    this.queue.push(p)
  }

  send(budget: Budget, now: number, requestTimeoutMs: number) {
    const batch = live(
      take(this.queue, budget, (p) => p.item.store.length + p.item.key.length + sizeHint(p.item.siblings)),
      now,
      this.node,
    )
    if (batch.length === 0) return null
    const done = this.request(
      timeoutFor(batch, now, requestTimeoutMs),
      batch.map((p) => p.item),
    )
      .then((results) => {
        if (results.length !== batch.length) throw countMismatch(this.node, 'hint', results.length, batch.length)
        for (const [i, p] of batch.entries()) p.resolve(results[i] as ItemResult<null>)
      })
      .then(
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
export class StoreLane implements Lane {
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
    // The batch claims the oldest routing among its items, so a node fences every item whose route is stale.
    let version = Number.POSITIVE_INFINITY
    for (const p of all) version = Math.min(version, p.version)
    const done = this.request(timeoutFor(all, now, requestTimeoutMs), {
      version,
      keys: gets.map((p) => p.item),
      coordinates: coordinates.map((p) => p.item),
      merges: merges.map((p) => p.item),
    })
      .then((res) => {
        if (res.coordinates.length !== coordinates.length) throw countMismatch(this.node, 'coordinate', res.coordinates.length, coordinates.length)
        if (res.merges.length !== merges.length) throw countMismatch(this.node, 'merge', res.merges.length, merges.length)
        if (res.gets.length !== gets.length) throw countMismatch(this.node, 'get', res.gets.length, gets.length)
        for (const [i, p] of coordinates.entries()) p.resolve(res.coordinates[i] as ItemResult<CoordinateResult>)
        for (const [i, p] of merges.entries()) p.resolve(res.merges[i] as ItemResult<null>)
        for (const [i, p] of gets.entries()) p.resolve(res.gets[i] as ItemResult<SiblingSet>)
      })
      .then(
        () => undefined,
        (error) => {
          for (const p of all) p.reject(error)
          throw error
        },
      )
    return { items, done }
  }
}
