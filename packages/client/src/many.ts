import { InvalidInputError, KvorumError, LIMITS, showKey, toHex } from '@kvorum/core'

/**
 * The shapes of getMany, putMany and deleteMany: one result per key, so one
 * key's failure (a quorum it could not reach, a value its codec cannot
 * decode) is that key's and not the whole call's.
 */

/** One key's outcome in a getMany, putMany or deleteMany. */
export type KeyResult<R> = { readonly ok: true; readonly value: R } | { readonly ok: false; readonly error: KvorumError }

/** One write of a putMany. */
export interface PutItem<K, T> {
  readonly key: K
  readonly value: T
  /** The context a get returned; without one the put is a blind write (a sibling of what is there). */
  readonly context?: string | undefined
  /** Time to live, ms, as put's `ttlMs` (0: never expires). Default the store's. */
  readonly ttlMs?: number | undefined
}

/** One delete of a deleteMany with the context a get returned; a bare key is read first, as `delete` does. */
export interface DeleteItem<K> {
  readonly key: K
  readonly context?: string | undefined
}

/** Keys (or items) one getMany, putMany or deleteMany takes at most. */
export const MAX_MANY_KEYS = LIMITS.maxBatchItems * 16

/** Refuse a call over MAX_MANY_KEYS, before anything is sent. */
export function checkCount(op: string, count: number): void {
  if (count > MAX_MANY_KEYS) throw new InvalidInputError(`${op} takes at most ${MAX_MANY_KEYS} keys, got ${count}: split it into several calls`)
}

/** Refuse a write call that names one key twice (the two writes would become siblings of each other). */
export function checkDistinct(op: string, keys: readonly Uint8Array[]): void {
  const seen = new Set<string>()
  for (const k of keys) {
    const id = toHex(k)
    if (seen.has(id)) throw new InvalidInputError(`${op} names key ${showKey(k)} twice: give each key once`)
    seen.add(id)
  }
}

/** A key's outcome: a KvorumError becomes that key's failure; anything else (a bug, a merge function's throw) fails the call. */
export function settle<R>(work: Promise<R>): Promise<KeyResult<R>> {
  return work.then(
    (value) => ({ ok: true, value }),
    (error: unknown) => {
      if (error instanceof KvorumError) return { ok: false, error }
      throw error
    },
  )
}
