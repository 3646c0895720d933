import { type ReplicaFailure, type WireError, KvorumError, errorFromItem, isFatal } from '@kvorum/core'

/**
 * How the rounds classify what a replica answered. The decisions come from
 * core's error registry (ERROR_CODES: fatal, mayHaveApplied), so a new code
 * is classified where it is declared; these are the rounds' shapes of it.
 */
export { isFatal, mayHaveApplied } from '@kvorum/core'

/** A replica's failure as quorum errors carry it. */
export function failureOf(node: string, e: unknown): ReplicaFailure {
  if (e instanceof KvorumError) return { node, code: e.code, message: e.message }
  return { node, code: 'KV_NODE_ERROR', message: String((e as Error)?.message ?? e) }
}

/** The error of an item that means the request itself is wrong (retrying elsewhere cannot help), or null. */
export function fatalItemError(error: WireError): KvorumError | null {
  return isFatal(error.code) ? errorFromItem(error) : null
}
