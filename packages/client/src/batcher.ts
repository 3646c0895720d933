import { type CoordinateItem, type CoordinateResult, type HintItem, type ItemResult, type KeySet, type SiblingSet, KvorumError, TimeoutError } from '@kvorum/core'
import type { NodeClient } from './transport.js'

/** Options of per-node coalescing. */
export interface BatchOptions {
  /** Items per batch request. Default 256. */
  readonly maxBatchItems?: number
  /** Requests in flight to one node at once; further items wait and coalesce. Default 4. */
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

interface Lane<I, R> {
  readonly send: (timeoutMs: number, items: I[]) => Promise<R[]>
  queue: Pending<I, R>[]
}

/**
 * Coalesces concurrent operations bound for one node into its batch
 * endpoints. At most `maxInFlightPerNode` requests are in flight; while they
 * are, new items queue up and leave together as the next batch, so under load
 * one HTTP request carries many operations.
 */
export class NodeBatcher {
  private readonly lanes = new Map<string, Lane<unknown, unknown>>()
  private inFlight = 0
  private queued = 0
  private scheduled = false
  private readonly maxBatch: number
  private readonly maxInFlight: number
  private readonly maxQueued: number
  private readonly requestTimeoutMs: number

  constructor(
    private readonly client: NodeClient,
    options: BatchOptions,
    private readonly report: { success: () => void; failure: (e: unknown) => void; batch: (items: number) => void },
  ) {
    this.maxBatch = options.maxBatchItems ?? 256
    this.maxInFlight = options.maxInFlightPerNode ?? 4
    this.maxQueued = options.maxQueuedPerNode ?? 20_000
    this.requestTimeoutMs = options.requestTimeoutMs ?? 1000
  }

  coordinate(store: string, item: CoordinateItem, deadline: number): Promise<ItemResult<CoordinateResult>> {
    return this.enqueue(`c:${store}`, (t, items) => this.client.coordinatePut({ timeoutMs: t }, store, items), item, deadline)
  }

  merge(store: string, item: KeySet, deadline: number): Promise<ItemResult<null>> {
    return this.enqueue(`m:${store}`, (t, items) => this.client.mergePut({ timeoutMs: t }, store, items), item, deadline)
  }

  get(store: string, key: Uint8Array, deadline: number): Promise<ItemResult<SiblingSet>> {
    return this.enqueue(`g:${store}`, (t, keys) => this.client.get({ timeoutMs: t }, store, keys), key, deadline)
  }

  hint(target: string, item: HintItem, deadline: number): Promise<ItemResult<null>> {
    return this.enqueue(`h:${target}`, (t, items) => this.client.putHints({ timeoutMs: t }, target, items), item, deadline)
  }

  private enqueue<I, R>(laneId: string, send: (timeoutMs: number, items: I[]) => Promise<R[]>, item: I, deadline: number): Promise<R> {
    if (this.queued >= this.maxQueued) {
      return Promise.reject(new KvorumError('KV_CLIENT_OVERLOADED', `${this.queued} operations already wait for this node; slow down or raise maxQueuedPerNode`))
    }
    let lane = this.lanes.get(laneId) as Lane<I, R> | undefined
    if (!lane) {
      lane = { send, queue: [] }
      this.lanes.set(laneId, lane as Lane<unknown, unknown>)
    }
    return new Promise<R>((resolve, reject) => {
      ;(lane as Lane<I, R>).queue.push({ item, deadline, resolve, reject })
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

  private pump(): void {
    for (const lane of this.lanes.values()) {
      while (lane.queue.length > 0 && this.inFlight < this.maxInFlight) this.flush(lane)
    }
  }

  private flush(lane: Lane<unknown, unknown>): void {
    const now = Date.now()
    const batch = lane.queue.splice(0, this.maxBatch)
    this.queued -= batch.length
    const live = batch.filter((p) => {
      if (p.deadline > now) return true
      p.reject(new TimeoutError('waiting for a batch slot', 0))
      return false
    })
    if (live.length === 0) return
    const timeoutMs = Math.min(this.requestTimeoutMs, Math.max(...live.map((p) => p.deadline - now)))
    this.inFlight++
    this.report.batch(live.length)
    lane.send(timeoutMs, live.map((p) => p.item)).then(
      (results) => {
        this.report.success()
        live.forEach((p, i) => p.resolve(results[i]))
      },
      (error) => {
        this.report.failure(error)
        for (const p of live) p.reject(error)
      },
    ).finally(() => {
      this.inFlight--
      this.pump()
    })
  }
}
