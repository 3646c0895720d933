import type { Time } from '@kvorum/core'
import type { Background } from './background.js'
import type { ClusterView } from './cluster-view.js'
import type { ClientEvents } from './emitter.js'
import type { InFlightWrites } from './in-flight.js'
import type { ClientMetrics } from './metrics.js'
import type { NodePool } from './node-pool.js'
import type { Settings } from './options.js'

/**
 * The parts the operation rounds, the handoff worker and the repairer work
 * with, passed explicitly: each has one job, and none knows the façade.
 */
export interface Runtime {
  /** The cluster definition and ring, and how they refresh. */
  readonly view: ClusterView
  /** Batchers and the failure detector. */
  readonly nodes: NodePool
  /** Work that outlives a caller's answer. */
  readonly background: Background
  readonly metrics: ClientMetrics
  /** Listeners of `kv.on` and the diagnostics channels. */
  readonly events: ClientEvents
  /** Sets on their way to replicas, which read repair need not send again. */
  readonly inFlight: InFlightWrites
  readonly time: Time
  readonly settings: Settings
  /** Who publishes events (the façade), for diagnostics_channel messages. */
  readonly client: object
  /** Set once by close(): store handles then refuse new operations. */
  readonly state: { closed: boolean }
}
