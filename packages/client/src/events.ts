import { channel } from 'node:diagnostics_channel'

/**
 * The SDK publishes what it does on `node:diagnostics_channel` channels, as
 * undici does: subscribing costs nothing when nobody listens, and an
 * application sees background work (read repair, hints, failures) that has
 * no caller to return to. Every message carries the `client` that sent it.
 */
export const CHANNELS = {
  /** A put (or delete) finished: `{ client, store, ok, code? }`. */
  put: 'kvorum:client:put',
  /** A read found stale replicas and sent them the merged set: `{ client, store, nodes }`. */
  readRepair: 'kvorum:client:read-repair',
  /** A hint was stored on a fallback for an unreachable replica: `{ client, store, target, holder }`. */
  hint: 'kvorum:client:hint',
  /** The failure detector marked a node down or up: `{ client, node, up, error? }`. */
  node: 'kvorum:client:node',
  /** The client switched to a newer cluster definition: `{ client, version }`. */
  cluster: 'kvorum:client:cluster',
  /**
   * Background work failed: `{ client, task, error, expected }`. `expected` is
   * true for a KvorumError (a node down, a timeout: the work is retried or left
   * to repair) and false for anything else, which is a bug worth reporting.
   */
  backgroundError: 'kvorum:client:background-error',
} as const

export type ChannelName = (typeof CHANNELS)[keyof typeof CHANNELS]

const channels = new Map(Object.values(CHANNELS).map((name) => [name, channel(name)]))

/** Publish on a channel when somebody listens (building the message only then). */
export function publish(name: ChannelName, message: () => object): void {
  const ch = channels.get(name)
  if (ch?.hasSubscribers) ch.publish(message())
}
