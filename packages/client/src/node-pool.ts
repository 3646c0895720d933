import { NodeUnavailableError, TimeoutError, type Time } from '@kvorum/core'
import { type BatchOptions, NodeBatcher } from './batcher.js'
import type { ClusterView } from './cluster-view.js'
import type { ClientEvents } from './emitter.js'
import { FailureDetector, type FailureDetectorOptions } from './failure-detector.js'
import { LatencyWindow } from './latency-window.js'
import type { ClientMetrics, NodeStats } from './metrics.js'

/**
 * The nodes as this process reaches them: one batcher per node (by id and
 * URL, so a node that moved gets a fresh one) and the one failure detector
 * every store shares.
 */
export class NodePool {
  readonly detector: FailureDetector
  private readonly batchers = new Map<string, NodeBatcher>()
  /** Request latency per node id (bounded by the nodes this process has talked to, at most the cluster's node limit and those removed). */
  private readonly latency = new Map<string, LatencyWindow>()

  constructor(
    events: ClientEvents,
    private readonly view: ClusterView,
    private readonly metrics: ClientMetrics,
    private readonly time: Time,
    private readonly batch: BatchOptions & { readonly requestTimeoutMs: number },
    detector: FailureDetectorOptions | undefined,
  ) {
    this.detector = new FailureDetector(
      async (id) => {
        await view.nodeClient(id).health({ timeoutMs: batch.requestTimeoutMs })
      },
      time,
      detector,
    )
    const url = (node: string) => view.node(node).url
    this.detector.on('down', (node: string, error: string, code: string | undefined) =>
      events.emit('nodeDown', () => ({ node, url: url(node), error, ...(code ? { code } : {}) })),
    )
    this.detector.on('up', (node: string, downMs: number) => events.emit('nodeUp', () => ({ node, url: url(node), downMs })))
  }

  isUp(node: string): boolean {
    return this.detector.isUp(node)
  }

  /** The batcher that carries this process's data-path requests to a node. */
  batcher(id: string): NodeBatcher {
    const def = this.view.node(id)
    const key = `${id}@${def.url}`
    let b = this.batchers.get(key)
    if (!b) {
      b = new NodeBatcher(id, this.view.nodeClient(id), this.batch, this.time, {
        success: (ms) => {
          this.recordLatency(id, ms)
          this.detector.success(id)
        },
        failure: (e, ms) => {
          // Only transport failures say the node is unwell; a refusal is an answer. A timeout
          // is a latency the caller waited through; a refused connection is not a latency.
          if (e instanceof NodeUnavailableError) this.detector.failure(id, e.message, true, e.code)
          else if (e instanceof TimeoutError) {
            this.recordLatency(id, ms)
            this.detector.failure(id, e.message, false, e.code)
          } else {
            this.recordLatency(id, ms)
            this.detector.success(id)
          }
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

  private recordLatency(id: string, ms: number): void {
    let w = this.latency.get(id)
    if (!w) {
      w = new LatencyWindow()
      this.latency.set(id, w)
    }
    w.record(ms, this.time.monotonicMs())
  }

  /** Per node of the definition (and any other this process still has work for): up, queue depth, recent request latency. */
  nodeStats(): Record<string, NodeStats> {
    const out: Record<string, NodeStats> = {}
    const ids = new Set([...this.view.cluster.nodes.map((n) => n.id), ...this.latency.keys()])
    const queues = new Map<string, { queued: number; inFlight: number }>()
    for (const [key, b] of this.batchers) {
      // A node that moved has a batcher per URL: its queues add up.
      const id = key.slice(0, key.indexOf('@'))
      const q = queues.get(id) ?? { queued: 0, inFlight: 0 }
      queues.set(id, { queued: q.queued + b.queuedItems, inFlight: q.inFlight + b.inFlightItems })
      ids.add(id)
    }
    const now = this.time.monotonicMs()
    for (const id of ids) {
      const lat = this.latency.get(id)?.summary(now) ?? { p50Ms: 0, p99Ms: 0, samples: 0 }
      const q = queues.get(id) ?? { queued: 0, inFlight: 0 }
      out[id] = {
        url: this.view.node(id).url,
        up: this.detector.isUp(id),
        queued: q.queued,
        inFlight: q.inFlight,
        latencyMsP50: lat.p50Ms,
        latencyMsP99: lat.p99Ms,
        latencySamples: lat.samples,
      }
    }
    return out
  }

  stop(): void {
    this.detector.stop()
  }
}
