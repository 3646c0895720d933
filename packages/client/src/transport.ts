import type { NodeDef, NodeProtocol } from '@kvorum/core'

/** Per-request settings a transport honours. */
export interface RequestOptions {
  /** Give up on this request after this many ms. */
  readonly timeoutMs: number
  /** Told the bytes of the request and answer bodies as they crossed the wire (0 in-process). Default none. */
  readonly onBytes?: ((sent: number, received: number) => void) | undefined
}

/** A node protocol whose every call also takes request options. */
export type NodeClient = {
  [K in keyof NodeProtocol]: NodeProtocol[K] extends (...args: infer A) => infer R ? (opts: RequestOptions, ...args: A) => R : never
}

/**
 * How the SDK reaches nodes. Two implementations: undici over HTTP, and
 * in-memory (calling engines in-process, for tests and the simulator).
 */
export interface Transport {
  /** The client for one node. */
  node(def: NodeDef): NodeClient
  /** Called with each cluster version a node reports, so the SDK notices newer definitions. */
  onClusterVersion?: (version: number, node: NodeDef) => void
  close(): Promise<void>
}
