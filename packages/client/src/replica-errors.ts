import {
  type ItemError, type ReplicaFailure, InvalidInputError, KvorumError, NodeUnavailableError, StaleMetadataError, TimeoutError,
  TooManySiblingsError,
} from '@kvorum/core'

/**
 * How the rounds classify what a replica answered: which failures end an
 * operation at once (asking another replica cannot help), and which may have
 * applied a write. Plain functions of the error, no I/O.
 */

/** A replica's failure as quorum errors carry it. */
export function failureOf(node: string, e: unknown): ReplicaFailure {
  if (e instanceof KvorumError) return { node, code: e.code, message: e.message }
  return { node, code: 'KV_NODE_ERROR', message: String((e as Error)?.message ?? e) }
}

/** The error of an item that means the request itself is wrong (retrying elsewhere will not help), or null. */
export function fatalItemError(error: ItemError): KvorumError | null {
  switch (error.code) {
    case 'KV_STALE_METADATA':
      return new StaleMetadataError(error.message, error.clusterVersion ?? 0)
    case 'KV_TOO_MANY_SIBLINGS':
      return new TooManySiblingsError(error.message)
    case 'KV_INVALID_INPUT':
      return new InvalidInputError(error.message)
    default:
      return null
  }
}

/** True when a thrown request error means the request itself is wrong. */
export function isFatal(e: unknown): boolean {
  return e instanceof StaleMetadataError || e instanceof InvalidInputError || e instanceof TooManySiblingsError || (e instanceof KvorumError && e.code === 'KV_UNKNOWN_STORE')
}

/** True when a failed request may still have been applied by the node. */
export function mayHaveApplied(e: unknown): boolean {
  return e instanceof TimeoutError || (e instanceof NodeUnavailableError && e.mayHaveApplied)
}
