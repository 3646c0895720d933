import { NodeUnavailableError, TimeoutError, type Time } from '@kvorum/core'
import { type BatchOptions, NodeBatcher } from './batcher.js'
import type { ClusterView } from './cluster-view.js'
import { CHANNELS, publish } from './events.js'
import { FailureDetector, type FailureDetectorOptions } from './failure-detector.js'
import type { ClientMetrics } from './metrics.js'

/**
 * The nodes as this process reaches them: one batcher per node (by id and
 * URL, so a node that moved gets a fresh one) and the one failure detector
 * every store shares.
 */
export class NodePool {
  readonly detector: FailureDetector
  private readonly batchers = new Map<string, NodeBatcher>()

  constructor(
    client: object,
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
    this.detector.on('down', (node: string, error: string) => publish(CHANNELS.node, () => ({ client, node, up: false, error })))
    this.detector.on('up', (node: string) => publish(CHANNELS.node, () => ({ client, node, up: true })))
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

  /** Operations queued in the SDK per node, for stats. */
  queueDepths(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const [key, b] of this.batchers) out[key.slice(0, key.indexOf('@'))] = b.queuedItems
    return out
  }

  stop(): void {
    this.detector.stop()
  }
}
