import { AbortedError, showKey, toHex } from '@kvorum/core'
import { untilAborted } from './call.js'

/** Most update functions one read and one write carry; more wait for the next group. */
export const MAX_COMBINED = 256

/** What an update hands its caller: the value its function made, and the context of the write that stored it. */
export interface UpdateResult<T> {
  readonly value: T
  readonly context: string
}

/**
 * One read, the functions applied in order, one write: the store does it.
 * `apply` takes the values read and answers the value to write, or null when
 * there is nothing to write (every function threw or was aborted). It may be
 * called again on a retry, with a fresh read.
 */
export type RunGroup<T> = (key: Uint8Array, apply: (values: T[]) => { value: T } | null) => Promise<{ context: string } | null>

interface Waiter<T> {
  readonly fn: (values: T[]) => T
  readonly signal: AbortSignal | undefined
  resolve(r: UpdateResult<T>): void
  reject(e: unknown): void
  /** Set once the caller has its answer (its function threw, or it was aborted). */
  settled: boolean
  /** What its function made in the current attempt. */
  value?: T
}

interface KeyQueue<T> {
  /** The group being read: later callers may still join it. Null once its functions have run. */
  joining: Waiter<T>[] | null
  /** Callers for the group after the running one. */
  next: Waiter<T>[]
}

/**
 * Updates of one key from this SDK, combined and run one group at a time.
 * Concurrent update() calls on a key share one read and one write: each
 * function sees the value the one before it made, and every caller gets its
 * own function's value and the write's context. Calls that arrive while a
 * group writes form the next group, which reads after that write. So this
 * SDK's own concurrent updates of a hot key never become siblings of each
 * other (nor count as lost increments of a counter), and a burst of them costs
 * one round of reads and writes instead of one each. Other SDKs' updates still
 * race as before and meet as siblings.
 */
export class UpdateCombiner<T> {
  private readonly keys = new Map<string, KeyQueue<T>>()

  constructor(private readonly runGroup: RunGroup<T>) {}

  /** Keys with a group running, for tests. */
  get running(): number {
    return this.keys.size
  }

  update(key: Uint8Array, fn: (values: T[]) => T, signal: AbortSignal | undefined): Promise<UpdateResult<T>> {
    const what = `update of ${showKey(key)}`
    const answer = new Promise<UpdateResult<T>>((resolve, reject) => {
      const waiter: Waiter<T> = { fn, signal, resolve, reject, settled: false }
      const id = toHex(key)
      const queue = this.keys.get(id)
      if (!queue) {
        const fresh: KeyQueue<T> = { joining: null, next: [] }
        this.keys.set(id, fresh)
        this.start(id, key, fresh, [waiter])
      } else if (queue.joining && queue.joining.length < MAX_COMBINED) queue.joining.push(waiter)
      else queue.next.push(waiter)
    })
    return untilAborted(answer, signal, what)
  }

  private start(id: string, key: Uint8Array, queue: KeyQueue<T>, group: Waiter<T>[]): void {
    queue.joining = group
    const apply = (values: T[]): { value: T } | null => {
      queue.joining = null
      let current = values
      let made: { value: T } | null = null
      for (const w of group) {
        if (w.settled) continue
        if (w.signal?.aborted) {
          w.settled = true
          w.reject(new AbortedError(`update of ${showKey(key)}`, w.signal.reason))
          continue
        }
        try {
          const value = w.fn(current)
          w.value = value
          current = [value]
          made = { value }
        } catch (e) {
          // Only this caller's function failed: the ones after it build on the value before it.
          w.settled = true
          w.reject(e)
        }
      }
      return made
    }
    this.runGroup(key, apply)
      .then(
        (written) => {
          for (const w of group) {
            if (w.settled) continue
            w.settled = true
            // A null write means no function made a value; every caller was answered above.
            if (written) w.resolve({ value: w.value as T, context: written.context })
          }
        },
        (e) => {
          for (const w of group) {
            if (w.settled) continue
            w.settled = true
            w.reject(e)
          }
        },
      )
      .finally(() => {
        const next = queue.next.splice(0, MAX_COMBINED)
        if (next.length > 0) this.start(id, key, queue, next)
        else this.keys.delete(id)
      })
  }
}
