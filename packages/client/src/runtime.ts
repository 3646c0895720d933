import type { ClusterDef, NodeDef, Ring } from '@kvorum/core'
import type { NodeBatcher } from './batcher.js'
import type { FailureDetector } from './failure-detector.js'
import type { InFlightWrites } from './in-flight.js'
import type { ClientMetrics } from './metrics.js'
import type { NodeClient } from './transport.js'

/** What the operation coordinators need from the client: the current view and the means to reach nodes. */
export interface Runtime {
  readonly cluster: ClusterDef
  readonly ring: Ring
  readonly detector: FailureDetector
  readonly metrics: ClientMetrics
  /** Longest single node request, ms. */
  readonly requestTimeoutMs: number
  /** Ask every primary on a read (Dynamo) instead of r of them plus speculation. */
  readonly readFromAll: boolean
  /** After this many ms without r replies, a read asks one more primary. */
  readonly readSpeculateMs: number
  /** Sets on their way to replicas, which read repair need not send again. */
  readonly inFlight: InFlightWrites
  node(id: string): NodeDef
  batcher(id: string): NodeBatcher
  client(id: string): NodeClient
  /** Keep a promise that outlives the caller's answer (late replies, repairs) so close() can wait for it. */
  background(work: Promise<unknown>): void
  /** Fetch a newer cluster definition in the background. */
  refreshSoon(): void
}
