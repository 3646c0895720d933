import type { StoreDef } from '@kvorum/core'
import type { WireRequest } from './http.js'
import type { BinaryRoute, Decoded } from './routes.js'

/** The stable codes of the node protocol: a refusal must carry one of these. */
export const STABLE_CODES = [
  'KV_INVALID_INPUT',
  'KV_UNAUTHORIZED',
  'KV_UNKNOWN_STORE',
  'KV_NOT_FOUND',
  'KV_PAYLOAD_TOO_LARGE',
  'KV_UNSUPPORTED_MEDIA_TYPE',
  'KV_STALE_METADATA',
  'KV_CLUSTER_VERSION_CONFLICT',
  // 411: the node takes request bodies only with a Content-Length (no chunked bodies).
  'KV_LENGTH_REQUIRED',
] as const
export type StableCode = (typeof STABLE_CODES)[number]

/**
 * What the node must do with a request: `must` accept it (2xx), `never`
 * accept it (4xx), or `may` do either. A refusal must carry one of `codes`.
 */
export interface Expect {
  readonly accept: 'must' | 'may' | 'never'
  readonly codes: readonly StableCode[]
  /** A refusal from Node's HTTP parser, with no body, is enough: the request is not HTTP/1.1. */
  readonly bare?: true
}

/**
 * What an accepted request may have changed: nothing, the keys of a binary
 * frame (known from decoding it as the node does), or anything (a mangled
 * path that still reached some route).
 */
export type Effect =
  | { readonly kind: 'none' }
  | { readonly kind: 'frame'; readonly route: BinaryRoute; readonly store: StoreDef; readonly decoded: Decoded }
  | { readonly kind: 'unknown' }

export interface FuzzRequest extends WireRequest {
  /** Class of the request and how it was made, for the summary and for failure reports. */
  readonly kind: string
  readonly expect: Expect
  readonly effect: Effect
  /** For reads: a problem with a 2xx body, if any. */
  readonly check?: (body: Uint8Array) => string | undefined
}
