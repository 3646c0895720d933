/** What every party needs to know about an error code, declared once for all of them. */
export interface ErrorSpec {
  /** HTTP status a node answers with. For codes only the SDK or the CLI raises: the status a gateway serving it should use. */
  readonly status: number
  /**
   * True when retrying the operation on another replica cannot help: the
   * request itself is wrong (input, store, limits, token), or the SDK must
   * first refresh its cluster definition. The SDK stops the operation at once.
   */
  readonly fatal: boolean
  /** True when a write that failed with this code may still have applied on some replica. */
  readonly mayHaveApplied: boolean
  /** True when the same call, unchanged, may succeed later (after a pause, a refresh, or a node's return). */
  readonly retryable: boolean
}

/**
 * The registry: every stable code Kvorum raises, with its HTTP status and how
 * callers may react. The `ErrorCode` union is its keys, so a code used
 * anywhere without an entry here (and so without a status) fails to compile;
 * errors.ts holds one class per code the same way.
 */
export const ERROR_CODES = {
  // The request is wrong: nothing was changed, and no replica will answer differently.
  KV_INVALID_INPUT: { status: 400, fatal: true, mayHaveApplied: false, retryable: false },
  KV_UNAUTHORIZED: { status: 401, fatal: true, mayHaveApplied: false, retryable: false },
  KV_UNKNOWN_STORE: { status: 404, fatal: true, mayHaveApplied: false, retryable: false },
  KV_TOO_MANY_SIBLINGS: { status: 409, fatal: true, mayHaveApplied: false, retryable: false },
  KV_PAYLOAD_TOO_LARGE: { status: 413, fatal: true, mayHaveApplied: false, retryable: false },
  KV_LENGTH_REQUIRED: { status: 411, fatal: true, mayHaveApplied: false, retryable: false },
  KV_UNSUPPORTED_MEDIA_TYPE: { status: 415, fatal: true, mayHaveApplied: false, retryable: false },
  KV_CLUSTER_VERSION_CONFLICT: { status: 409, fatal: true, mayHaveApplied: false, retryable: false },
  // Refused before applying anything; the SDK refreshes its definition and retries the whole operation.
  KV_STALE_METADATA: { status: 409, fatal: true, mayHaveApplied: false, retryable: true },
  // The node's state, not the request: another replica, or the same one later, may take it.
  // A route this node does not serve: during a rolling upgrade another node may serve it.
  KV_NOT_FOUND: { status: 404, fatal: false, mayHaveApplied: false, retryable: false },
  KV_NO_CLUSTER: { status: 503, fatal: false, mayHaveApplied: false, retryable: true },
  KV_OVERLOADED: { status: 503, fatal: false, mayHaveApplied: false, retryable: true },
  KV_NODE_CLOSED: { status: 503, fatal: false, mayHaveApplied: false, retryable: true },
  KV_HINT_BACKLOG_FULL: { status: 503, fatal: false, mayHaveApplied: false, retryable: true },
  KV_DATA_FORMAT: { status: 500, fatal: false, mayHaveApplied: false, retryable: false },
  // The node's disk (or its --max-db-mib quota) is full: the write rolled back whole; reads still work, and writes again once space returns.
  KV_DISK_FULL: { status: 507, fatal: false, mayHaveApplied: false, retryable: true },
  // A stored row failed its checksum (or a database page is damaged): its key is refused (never served), and repair restores it from peers.
  KV_DATA_CORRUPT: { status: 500, fatal: false, mayHaveApplied: false, retryable: true },
  // Raised by kvorum-node when it cannot start (printed on one line, never sent over HTTP).
  KV_LISTEN_FAILED: { status: 500, fatal: false, mayHaveApplied: false, retryable: false },
  KV_DATA_DIR: { status: 500, fatal: false, mayHaveApplied: false, retryable: false },
  // The node failed while serving: it may have committed before it failed.
  KV_INTERNAL: { status: 500, fatal: false, mayHaveApplied: true, retryable: true },
  // Raised by the SDK about one node.
  KV_NODE_UNAVAILABLE: { status: 503, fatal: false, mayHaveApplied: true, retryable: true },
  KV_NODE_DOWN: { status: 503, fatal: false, mayHaveApplied: false, retryable: true },
  KV_NODE_ERROR: { status: 502, fatal: false, mayHaveApplied: true, retryable: true },
  KV_CLIENT_OVERLOADED: { status: 503, fatal: false, mayHaveApplied: false, retryable: true },
  // Raised by the SDK about a whole operation.
  KV_QUORUM_NOT_MET: { status: 503, fatal: false, mayHaveApplied: true, retryable: true },
  KV_TIMEOUT: { status: 504, fatal: false, mayHaveApplied: true, retryable: true },
  KV_INDETERMINATE_WRITE: { status: 503, fatal: false, mayHaveApplied: true, retryable: true },
  KV_BOOTSTRAP_FAILED: { status: 503, fatal: false, mayHaveApplied: false, retryable: true },
  KV_CLOSED: { status: 503, fatal: true, mayHaveApplied: false, retryable: false },
  // The store's codec does not fit what is stored: no replica will answer differently, and the same read fails again.
  KV_DECODE_FAILED: { status: 500, fatal: true, mayHaveApplied: false, retryable: false },
  // The caller's signal ended the call; a write already sent may still land (499: the client gave up, as nginx logs it).
  KV_ABORTED: { status: 499, fatal: true, mayHaveApplied: true, retryable: false },
  // Raised by the CLI.
  KV_MISSING_PACKAGE: { status: 501, fatal: true, mayHaveApplied: false, retryable: false },
  KV_USAGE: { status: 400, fatal: true, mayHaveApplied: false, retryable: false },
  KV_CLUSTER_EXISTS: { status: 409, fatal: true, mayHaveApplied: false, retryable: false },
  KV_PORT_IN_USE: { status: 409, fatal: true, mayHaveApplied: false, retryable: false },
  // An export file that is not one, is truncated, fails its checksum, or has a format this version does not read.
  KV_BAD_EXPORT: { status: 422, fatal: true, mayHaveApplied: false, retryable: false },
  // A code this version does not know (sent by a newer node): assume the worst a write can do, and let another replica try.
  // A data credential pushed a cluster definition the admin secret did not sign; TLS asked of a plain-HTTP caller.
  KV_UNSIGNED_DEFINITION: { status: 403, fatal: true, mayHaveApplied: false, retryable: false },
  KV_TLS_REQUIRED: { status: 400, fatal: true, mayHaveApplied: false, retryable: false },
  KV_UNKNOWN_CODE: { status: 502, fatal: false, mayHaveApplied: true, retryable: false },
  // A put's condition (ifAbsent, ifUnchanged) did not hold on what the read quorum returned: nothing was written.
  KV_CONDITION_FAILED: { status: 412, fatal: true, mayHaveApplied: false, retryable: false },
} satisfies Record<string, ErrorSpec>

/** A stable error code: one of the registry's keys. */
export type ErrorCode = keyof typeof ERROR_CODES

/** True when `code` is in the registry (a newer node may send codes this version does not know). */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code)
}

/** Every code in the registry, in its order. */
export const ALL_ERROR_CODES: readonly ErrorCode[] = Object.keys(ERROR_CODES).filter(isErrorCode)

/** An error as it travels: a JSON error body, or a failed item of a batch. */
export interface WireError {
  readonly code: ErrorCode
  readonly message: string
  /** For KV_STALE_METADATA: the cluster version the node holds. */
  readonly clusterVersion?: number
}
