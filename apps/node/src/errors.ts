import { type WireError, InternalError, KvorumError, statusOf } from '@kvorum/core'

/** Status and JSON body for an error thrown while serving a request: the registry's status, KV_INTERNAL for anything without a code. */
export function errorResponse(e: unknown): { status: number; body: WireError } {
  const err = e instanceof KvorumError ? e : new InternalError()
  return { status: statusOf(err.code), body: err.toJSON() }
}
