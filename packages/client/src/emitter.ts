import { InvalidInputError, KvorumError } from '@kvorum/core'
import { type ClientEventMap, type ClientEventName, EVENT_CHANNELS, channelOf } from './events.js'

/** Listeners one event takes at most: more is a leak (a listener added per request), refused with KV_INVALID_INPUT. */
export const MAX_LISTENERS_PER_EVENT = 64

export type Listener<E extends ClientEventName> = (event: ClientEventMap[E]) => unknown

/**
 * A client's events, told to listeners added with `on` and published on the
 * event's diagnostics channel. Listeners run synchronously, in the order they
 * were added; nothing is queued or kept for an event nobody listens to, and
 * its payload is not even built.
 *
 * A listener that throws (or returns a promise that rejects) does not reach
 * the SDK: the code that emitted the event is in the middle of the failure
 * detector, a write's late replies or a read repair, and an exception there
 * would fail unrelated operations or leave their state half-updated. Nor is
 * it swallowed: it is counted (`stats().listenerErrors`) and told to the
 * `backgroundError` listeners as task `listener:<event>`, where an
 * application already looks for bugs. A `backgroundError` listener that
 * throws is only counted, so a broken one cannot loop.
 */
export class ClientEvents {
  private readonly listeners = new Map<ClientEventName, Listener<ClientEventName>[]>()
  /** Listener calls that threw or rejected. */
  listenerErrors = 0

  /** `client`: what every channel message carries as its `client`. */
  constructor(private readonly client: object) {}

  on<E extends ClientEventName>(event: E, listener: Listener<E>): void {
    const list = this.listOf(event, listener)
    if (list.length >= MAX_LISTENERS_PER_EVENT)
      throw new InvalidInputError(`${event} has ${list.length} listeners already, the most it takes (is one added per request?)`)
    list.push(listener as Listener<ClientEventName>)
  }

  /** Remove one registration of `listener` (the last added, as EventEmitter does); no-op when it is not there. */
  off<E extends ClientEventName>(event: E, listener: Listener<E>): void {
    const list = this.listOf(event, listener)
    const i = list.lastIndexOf(listener as Listener<ClientEventName>)
    if (i >= 0) list.splice(i, 1)
  }

  /** Listeners of an event, for tests and leak checks. */
  count(event: ClientEventName): number {
    return this.listeners.get(event)?.length ?? 0
  }

  /** Tell the event's listeners and channel subscribers; `payload` is called only when there is one. */
  emit<E extends ClientEventName>(event: E, payload: () => ClientEventMap[E]): void {
    const list = this.listeners.get(event)
    const { name, extra } = EVENT_CHANNELS[event]
    const ch = channelOf(name)
    if (!list?.length && !ch.hasSubscribers) return
    const message = payload()
    if (ch.hasSubscribers) ch.publish({ client: this.client, ...extra, ...message })
    if (!list?.length) return
    // A copy: a listener may remove itself (or another) while this runs.
    for (const listener of [...list]) this.call(event, listener, message)
  }

  private call(event: ClientEventName, listener: Listener<ClientEventName>, message: ClientEventMap[ClientEventName]): void {
    try {
      const out = listener(message)
      if (out instanceof Promise) out.catch((e: unknown) => this.failed(event, e))
    } catch (e) {
      this.failed(event, e)
    }
  }

  private failed(event: ClientEventName, error: unknown): void {
    this.listenerErrors++
    if (event === 'backgroundError') return
    this.emit('backgroundError', () => ({ task: `listener:${event}`, error, expected: false }))
  }

  private listOf(event: ClientEventName, listener: unknown): Listener<ClientEventName>[] {
    if (!Object.hasOwn(EVENT_CHANNELS, event))
      throw new InvalidInputError(`unknown event ${JSON.stringify(event)}: one of ${Object.keys(EVENT_CHANNELS).join(', ')}`)
    if (typeof listener !== 'function') throw new InvalidInputError(`a listener of ${event} must be a function, got ${typeof listener}`)
    let list = this.listeners.get(event)
    if (!list) {
      list = []
      this.listeners.set(event, list)
    }
    return list
  }
}

/** The code of an error, when it is a KvorumError: for event payloads (set only when there is one). */
export function codeOf(error: unknown): { code?: string } {
  return error instanceof KvorumError ? { code: error.code } : {}
}
