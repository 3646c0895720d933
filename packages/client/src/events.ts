import { channel } from 'node:diagnostics_channel'

/**
 * The SDK publishes what it does on `node:diagnostics_channel` channels, as
 * undici does: subscribing costs nothing when nobody listens, and an
 * application sees background work (read repair, hints, failures) that has
 * no caller to return to. Every message carries the `client` that sent it.
 * The same events reach listeners added with `kv.on(...)` (see emitter.ts).
 */
export const CHANNELS = {
  /** A put (or delete) finished: `{ client, store, ok, code? }`. */
  put: 'kvorum:client:put',
  /** A public operation finished: `{ client, store, op, durationMs, ok, code?, error? }` (see OperationEvent). */
  operation: 'kvorum:client:operation',
  /** A read found stale replicas and sent them the merged set: `{ client, store, key, nodes, siblings }`. */
  readRepair: 'kvorum:client:read-repair',
  /** A hint was stored on a fallback for an unreachable replica: `{ client, store, key, target, holder }`. */
  hint: 'kvorum:client:hint',
  /** The failure detector marked a node down or up: `{ client, node, url, up, error?, code?, downMs? }`. */
  node: 'kvorum:client:node',
  /** The client switched to a newer cluster definition: `{ client, version, previousVersion, nodes }`. */
  cluster: 'kvorum:client:cluster',
  /**
   * Background work failed: `{ client, task, error, code?, expected }`. `expected` is
   * true for a KvorumError (a node down, a timeout: the work is retried or left
   * to repair) and false for anything else, which is a bug worth reporting.
   */
  backgroundError: 'kvorum:client:background-error',
} as const

export type ChannelName = (typeof CHANNELS)[keyof typeof CHANNELS]

/** The failure detector marked a node down: requests skip it until a probe gets an answer. */
export interface NodeDownEvent {
  readonly node: string
  readonly url: string
  /** Why: the last failed request's message. */
  readonly error: string
  /** That failure's stable code (`KV_NODE_UNAVAILABLE`, `KV_TIMEOUT`), when it had one. */
  readonly code?: string
}

/** A node that was down answered again. */
export interface NodeUpEvent {
  readonly node: string
  readonly url: string
  /** How long it was marked down, ms. */
  readonly downMs: number
}

/** The client switched to a newer cluster definition. */
export interface ClusterChangedEvent {
  readonly version: number
  readonly previousVersion: number
  /** The node ids of the new definition. */
  readonly nodes: readonly string[]
}

/** A read found replicas behind the merged sibling set and sent it to them (one key; `key` is a copy). */
export interface ReadRepairEvent {
  readonly store: string
  readonly key: Uint8Array
  /** The replicas repaired. */
  readonly nodes: readonly string[]
  /** Siblings in the merged set they were sent. */
  readonly siblings: number
}

/** A write stored a hint on `holder` for `target`, a replica it could not reach (one key; `key` is a copy). */
export interface HintEvent {
  readonly store: string
  readonly key: Uint8Array
  readonly target: string
  readonly holder: string
}

/** Work with no caller to answer failed (a late replica write, a repair, a refresh, a listener). */
export interface BackgroundErrorEvent {
  /** What failed: `read-repair`, `hint`, `replica-write`, `cluster-refresh`, `listener:<event>`, ... */
  readonly task: string
  readonly error: unknown
  /** The error's stable code, when it is a KvorumError. */
  readonly code?: string
  /** True for a KvorumError (an unreachable node, a timeout); false for anything else, which is a bug. */
  readonly expected: boolean
}

/** A public store operation finished (what the metrics exporters are fed from). */
export interface OperationEvent {
  readonly store: string
  /** `get`, `put`, `delete`, ... as the SDK names its operations. */
  readonly op: string
  /** From the call's start to its answer, ms. */
  readonly durationMs: number
  readonly ok: boolean
  /** The failure's stable code, when it failed with a KvorumError. */
  readonly code?: string
  /** What it failed with, when it failed. */
  readonly error?: unknown
}

/** Each event of `kv.on(event, listener)` and what its listener receives. */
export interface ClientEventMap {
  nodeDown: NodeDownEvent
  nodeUp: NodeUpEvent
  clusterChanged: ClusterChangedEvent
  readRepair: ReadRepairEvent
  hint: HintEvent
  backgroundError: BackgroundErrorEvent
  operation: OperationEvent
}

export type ClientEventName = keyof ClientEventMap

/** The channel each event is published on, and what its message adds to the event (besides `client`). */
export const EVENT_CHANNELS: { readonly [E in ClientEventName]: { readonly name: ChannelName; readonly extra?: object } } = {
  nodeDown: { name: CHANNELS.node, extra: { up: false } },
  nodeUp: { name: CHANNELS.node, extra: { up: true } },
  clusterChanged: { name: CHANNELS.cluster },
  readRepair: { name: CHANNELS.readRepair },
  hint: { name: CHANNELS.hint },
  backgroundError: { name: CHANNELS.backgroundError },
  operation: { name: CHANNELS.operation },
}

const channels = new Map(Object.values(CHANNELS).map((name) => [name, channel(name)]))

/** The channel object of a name (created once). */
export function channelOf(name: ChannelName) {
  const ch = channels.get(name)
  if (!ch) throw new Error(`assertion failed: ${name} is one of CHANNELS`)
  return ch
}

/** Publish on a channel when somebody listens (building the message only then). */
export function publish(name: ChannelName, message: () => object): void {
  const ch = channelOf(name)
  if (ch.hasSubscribers) ch.publish(message())
}
