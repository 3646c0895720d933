import type { FailureDetector } from './failure-detector.js'
import { type Kvorum, runtimes } from './client.js'
import { HandoffWorker, type HandoffOptions } from './handoff.js'
import type { Runtime } from './runtime.js'

/**
 * Seams for tests and tools, kept off the main entry point
 * (`@kvorum/client/testing`): the in-memory transport, and a client's parts.
 */
export { MemoryTransport } from './memory-transport.js'

function runtimeOf(kv: Kvorum): Runtime {
  const rt = runtimes.get(kv)
  if (!rt) throw new Error('assertion failed: a Kvorum made by connect() has a runtime')
  return rt
}

/** The client's failure detector (tests mark nodes up or down through it). */
export function detectorOf(kv: Kvorum): FailureDetector {
  return runtimeOf(kv).nodes.detector
}

/** A hint handoff worker for this client that is not started: call `sweep()` yourself. */
export function handoffWorker(kv: Kvorum, options: HandoffOptions = {}): HandoffWorker {
  return new HandoffWorker(runtimeOf(kv), options)
}

/** Background promises still pending (late replies, repairs, hints). */
export function pendingBackground(kv: Kvorum): number {
  return runtimeOf(kv).background.size
}
