import { KvorumError } from '@kvorum/core'

/** HTTP status for each stable error code; anything else is a 500. */
const STATUS: Record<string, number> = {
  KV_INVALID_INPUT: 400,
  KV_UNAUTHORIZED: 401,
  KV_UNKNOWN_STORE: 404,
  KV_NOT_FOUND: 404,
  KV_PAYLOAD_TOO_LARGE: 413,
  KV_LENGTH_REQUIRED: 411,
  KV_UNSUPPORTED_MEDIA_TYPE: 415,
  KV_STALE_METADATA: 409,
  KV_CLUSTER_VERSION_CONFLICT: 409,
  KV_NO_CLUSTER: 503,
  KV_OVERLOADED: 503,
  KV_NODE_CLOSED: 503,
}

/** Status and JSON body for an error thrown while serving a request. */
export function errorResponse(e: unknown): { status: number; body: { code: string; message: string; clusterVersion?: number } } {
  if (e instanceof KvorumError) {
    const body: { code: string; message: string; clusterVersion?: number } = { code: e.code, message: e.message }
    if ('clusterVersion' in e && typeof e.clusterVersion === 'number') body.clusterVersion = e.clusterVersion
    return { status: STATUS[e.code] ?? 500, body }
  }
  return { status: 500, body: { code: 'KV_INTERNAL', message: 'internal error; see the node log' } }
}
