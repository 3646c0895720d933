import { type Time, AbortedError, InvalidInputError, KvorumError } from '@kvorum/core'

/** The one deadline and the signal of a public call: fixed when it starts, shared by every step and retry. */
export interface CallScope {
  /** When the whole call must end, ms on the runtime's monotonic clock (`Time.monotonicMs`): a wall-clock step does not move it. */
  readonly deadline: number
  /** The call's configured timeout, for messages. */
  readonly timeoutMs: number
  /** The caller's signal; once aborted, nothing more is sent for the call. */
  readonly signal: AbortSignal | undefined
}

/** Throw the call's AbortedError if its signal has aborted: checked before each step that would send something. */
export function checkAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new AbortedError(what, signal.reason)
}

/**
 * `work`'s outcome, unless the signal aborts first: then an AbortedError at
 * once, and whatever `work` answers later is dropped (a write it acknowledges
 * after the abort is not reported as acknowledged). `work` itself goes on to
 * its deadline; the steps it has not started check the signal and stop.
 */
export function untilAborted<R>(work: Promise<R>, signal: AbortSignal | undefined, what: string): Promise<R> {
  if (!signal) return work
  return new Promise<R>((resolve, reject) => {
    const abort = () => reject(new AbortedError(what, signal.reason))
    signal.addEventListener('abort', abort, { once: true })
    work.then(
      (value) => {
        signal.removeEventListener('abort', abort)
        if (signal.aborted) abort()
        else resolve(value)
      },
      (error) => {
        signal.removeEventListener('abort', abort)
        if (signal.aborted) abort()
        else reject(error)
      },
    )
  })
}

/** The public operations a retry policy is asked about (a getMany, putMany or deleteMany asks per key). */
export type RetryOp = 'get' | 'put' | 'delete' | 'update'

/** What a retry policy is told after an attempt failed. */
export interface RetryInfo {
  /** The attempt's error; always one with `retryable: true`. */
  readonly error: KvorumError
  /** Attempts made so far (1 after the first failed). */
  readonly attempt: number
  readonly op: RetryOp
  readonly store: string
  /** The key as the caller gave it. */
  readonly key: string | Uint8Array
  /** Ms left until the call's deadline. */
  readonly remainingMs: number
}

/**
 * Asked after an attempt failed with a retryable error: ms to wait before
 * trying again, or undefined to give up with that error. A wait that would
 * end past the call's deadline gives up too.
 */
export type RetryPolicy = (info: RetryInfo) => number | undefined

/** Most attempts of one call under a retry policy, whatever it answers (bounds a policy that always says 0). */
export const MAX_CALL_ATTEMPTS = 10

/** Run `attempt` and, while a retry policy asks for it and the deadline allows, again after its delay. */
export async function withRetry<R>(
  policy: RetryPolicy | undefined,
  time: Time,
  scope: CallScope,
  about: { readonly op: RetryOp; readonly store: string; readonly key: string | Uint8Array },
  attempt: () => Promise<R>,
): Promise<R> {
  for (let made = 1; ; made++) {
    try {
      return await attempt()
    } catch (e) {
      if (!policy || !(e instanceof KvorumError) || !e.retryable || made >= MAX_CALL_ATTEMPTS) throw e
      const remainingMs = scope.deadline - time.monotonicMs()
      const delayMs = policy({ error: e, attempt: made, op: about.op, store: about.store, key: about.key, remainingMs })
      if (delayMs === undefined) throw e
      if (!Number.isFinite(delayMs) || delayMs < 0)
        throw new InvalidInputError(`the retry policy must return a delay in ms (>= 0) or undefined, got ${delayMs}`)
      if (delayMs >= remainingMs) throw e
      await pause(time, delayMs, scope.signal, `${about.op} retry`)
    }
  }
}

/** Wait `ms`, or less if the signal aborts (then an AbortedError). */
export function pause(time: Time, ms: number, signal: AbortSignal | undefined, what: string): Promise<void> {
  checkAborted(signal, what)
  return new Promise<void>((resolve, reject) => {
    const abort = () => {
      time.clearTimeout(timer)
      reject(new AbortedError(what, signal?.reason))
    }
    const timer = time.setTimeout(() => {
      signal?.removeEventListener('abort', abort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', abort, { once: true })
  })
}
