import { ERROR_CODES, type ErrorCode, type WireError } from './error-codes.js'

/**
 * Every error Kvorum raises on purpose is a KvorumError with a stable `code`
 * that callers and the wire protocol can switch on; each code has its own
 * subclass below, and its status and retry semantics in ERROR_CODES.
 * Programmer errors are assertions (plain `Error`), not codes.
 */
export class KvorumError extends Error {
  /** Stable, machine-readable code, e.g. `KV_INVALID_INPUT`. */
  readonly code: ErrorCode
  /**
   * True when the same call, unchanged, may succeed later (after a pause, a
   * refresh, or a node's return): timeouts, overload, unreachable nodes, stale
   * metadata. False when the call itself is wrong or was given up (invalid
   * input, unauthorized, unknown store, closed, aborted). From the code's
   * entry in ERROR_CODES.
   */
  readonly retryable: boolean
  /** Prefer the code's own class (errorFromWire gives it); a plain KvorumError is only `instanceof KvorumError`. */
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.retryable = ERROR_CODES[code].retryable
    this.name = new.target.name
  }
  /** The error as it travels: a JSON error body, or a failed item of a batch. */
  toJSON(): WireError {
    return { code: this.code, message: this.message }
  }
}

// The request is wrong.

/** Bad input from a caller: wrong sizes, malformed frames, bad clocks. Nothing was changed. */
export class InvalidInputError extends KvorumError {
  constructor(message: string) {
    super('KV_INVALID_INPUT', message)
  }
}

/** The request needs a token the caller did not present. */
export class UnauthorizedError extends KvorumError {
  /** `message` defaults to the node's answer; the SDK gives one naming every seed that refused. */
  constructor(message = 'missing or wrong token: pass the cluster token (Authorization: Bearer <token>)') {
    super('KV_UNAUTHORIZED', message)
  }
}

/** The store is not in the cluster definition this party holds. */
export class UnknownStoreError extends KvorumError {
  constructor(store: string) {
    super('KV_UNKNOWN_STORE', `unknown store "${store}": create it with kvorum store create ${store}:n=3,r=2,w=2 --seeds URL`)
  }
}

/** A key would hold more siblings than the store allows; resolve them with a merge function first. */
export class TooManySiblingsError extends KvorumError {
  constructor(message: string) {
    super('KV_TOO_MANY_SIBLINGS', message)
  }
  static forKey(key: string, siblings: number, limit: number): TooManySiblingsError {
    return new TooManySiblingsError(
      `key ${key} would hold ${siblings} siblings, over the limit of ${limit}: read it and write back a merged value with its context (or give the store a merge function)`,
    )
  }
}

/** A request body over the node's frame limit. */
export class PayloadTooLargeError extends KvorumError {
  constructor(limitBytes: number) {
    super('KV_PAYLOAD_TOO_LARGE', `request body is over ${limitBytes} bytes; send smaller batches`)
  }
}

/** A request body without a Content-Length (the node refuses chunked bodies). */
export class LengthRequiredError extends KvorumError {
  constructor() {
    super('KV_LENGTH_REQUIRED', 'send a Content-Length header (chunked request bodies are not accepted)')
  }
}

/** A binary endpoint was sent a body of another content type. */
export class UnsupportedMediaTypeError extends KvorumError {
  constructor(expected: string, got: string) {
    super('KV_UNSUPPORTED_MEDIA_TYPE', `send the body as ${expected}, not ${JSON.stringify(got)}`)
  }
}

/** A cluster definition offered to a node that already holds that version or a newer one. */
export class ClusterVersionConflictError extends KvorumError {
  constructor(held: number, offered: number, why?: string) {
    super('KV_CLUSTER_VERSION_CONFLICT', why ?? `node holds cluster version ${held}; a new definition needs a higher version than that, got ${offered}`)
  }
}

/** A node was asked for a partition it does not hold under its (newer) cluster definition. */
export class StaleMetadataError extends KvorumError {
  /** The version of the cluster definition the node holds. */
  readonly clusterVersion: number
  constructor(message: string, clusterVersion: number) {
    super('KV_STALE_METADATA', message)
    this.clusterVersion = clusterVersion
  }
  override toJSON(): WireError {
    return { code: this.code, message: this.message, clusterVersion: this.clusterVersion }
  }
}

// The node's state.

/** A request for a route the node does not serve. */
export class RouteNotFoundError extends KvorumError {
  constructor(method: string, path: string) {
    super('KV_NOT_FOUND', `no route ${method} ${path}`)
  }
}

/** A node that has not been given a cluster definition yet. */
export class NoClusterError extends KvorumError {
  constructor() {
    super('KV_NO_CLUSTER', 'this node has no cluster definition yet: run `kvorum cluster init --nodes ...` against it')
  }
}

/** The node's write queue is full; the caller should back off and retry. */
export class OverloadedError extends KvorumError {
  constructor(limit: number) {
    super('KV_OVERLOADED', `node write queue is full (${limit} requests); retry after a short pause`)
  }
}

/** The node is shutting down: it refuses new work and answers what was queued with this. */
export class NodeClosedError extends KvorumError {
  constructor() {
    super('KV_NODE_CLOSED', 'this node is shutting down')
  }
}

/** A fallback node refused a hint because its backlog for that target is full. */
export class HintBacklogFullError extends KvorumError {
  constructor(target: string, limit: number) {
    super('KV_HINT_BACKLOG_FULL', `hint backlog for ${target} is full (${limit} keys); anti-entropy will repair what is not hinted`)
  }
}

/** The node's database was written by a newer format than this build reads; the node refuses to open it. */
export class DataFormatError extends KvorumError {
  /** `format`: the newer file format found; or, as text, the stored item this build cannot read (it passes its checksum but does not decode). */
  constructor(format: number | string, supported = 0) {
    super(
      'KV_DATA_FORMAT',
      typeof format === 'string'
        ? format
        : `this database was written by a newer kvorum-node (format ${format}; this one reads up to ${supported}): run the newer version, or wipe the directory and let repair refill it`,
    )
  }
}

/** The node cannot write: its disk, or the quota of its database (`kvorum-node --max-db-mib`), is full. Nothing of the write was stored. */
export class DiskFullError extends KvorumError {
  /** `starting`: the node found no room for the few pages it writes when it opens its database. */
  constructor(nodeId: string, starting = false) {
    super(
      'KV_DISK_FULL',
      starting
        ? `node ${nodeId} cannot start: its disk is full (opening the database writes a few pages); free space on its disk and start it again`
        : `node ${nodeId} is out of disk space (its disk or its --max-db-mib quota is full): it refuses writes and still serves reads; free space on its disk or raise --max-db-mib, and it takes writes again without a restart`,
    )
  }
}

/** A stored row failed its checksum or decode, or the database page holding it is damaged: the node treats it as missing. */
export class DataCorruptError extends KvorumError {
  constructor(message: string) {
    super('KV_DATA_CORRUPT', message)
  }
}

/** kvorum-node could not listen on its address: the port is taken, privileged, or the host is not this machine's. */
export class ListenFailedError extends KvorumError {
  constructor(message: string) {
    super('KV_LISTEN_FAILED', message)
  }
}

/** kvorum-node cannot use its data directory: it cannot be created or written, or what is there is not a Kvorum database. */
export class DataDirError extends KvorumError {
  constructor(message: string) {
    super('KV_DATA_DIR', message)
  }
}

/** The node failed while serving a request (a bug or an I/O failure; the node logs it). */
export class InternalError extends KvorumError {
  constructor(message = 'internal error; see the node log') {
    super('KV_INTERNAL', message)
  }
}

// Raised by the SDK about one node.

/** A node or transport failure (connection refused, reset, bad answer). */
export class NodeUnavailableError extends KvorumError {
  /**
   * The request may have reached the node before the connection failed (reset or
   * closed while waiting for the answer), so a write may have applied. False when
   * it surely did not (connection refused). Default false.
   */
  readonly mayHaveApplied: boolean
  constructor(node: string, message: string, options?: { cause?: unknown; mayHaveApplied?: boolean }) {
    super('KV_NODE_UNAVAILABLE', `${node}: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause })
    this.mayHaveApplied = options?.mayHaveApplied ?? false
  }
}

/** The SDK's failure detector holds the node down, so it was not asked. */
export class NodeDownError extends KvorumError {
  constructor(node: string) {
    super('KV_NODE_DOWN', `${node}: marked down by the failure detector`)
  }
}

/** A node failed without a stable code (an answer that is not `{code, message}`, or an error without a code). */
export class NodeError extends KvorumError {
  constructor(node: string, message: string) {
    super('KV_NODE_ERROR', `${node}: ${message}`)
  }
}

/** The SDK's queue for one node is full: the application sends faster than the node answers. */
export class ClientOverloadedError extends KvorumError {
  constructor(queued: number) {
    super('KV_CLIENT_OVERLOADED', `${queued} operations already wait for this node; slow down or raise maxQueuedPerNode`)
  }
}

// Raised by the SDK about a whole operation.

/** One replica's failure, as carried by quorum errors. */
export interface ReplicaFailure {
  readonly node: string
  readonly code: ErrorCode
  readonly message: string
}

/** Fewer replicas answered than the quorum needs. */
export class QuorumNotMetError extends KvorumError {
  readonly replicas: readonly ReplicaFailure[]
  readonly needed: number
  readonly acknowledged: number
  /**
   * `replies.of`: how many replicas there were to ask, so the message says
   * "1 of 3 replicas answered"; `replies.silent`: those that had not answered
   * (or were not asked) when the quorum became out of reach.
   */
  constructor(
    op: string,
    needed: number,
    acknowledged: number,
    replicas: readonly ReplicaFailure[],
    what = 'replicas',
    replies?: { readonly of: number; readonly silent: readonly string[] },
  ) {
    const detail = [...replicas.map((r) => `${r.node}: ${r.code} ${r.message}`), ...(replies?.silent ?? []).map((n) => `${n}: no answer yet`)].join('; ')
    const answered = replies ? `${acknowledged} of ${replies.of} replicas` : `${acknowledged}`
    super('KV_QUORUM_NOT_MET', `${op} needed ${needed} ${what} but ${answered} answered${detail ? ` (${detail})` : ''}`)
    this.replicas = replicas
    this.needed = needed
    this.acknowledged = acknowledged
  }
}

/** The whole operation ran past its deadline. */
export class TimeoutError extends KvorumError {
  constructor(op: string, timeoutMs: number) {
    super('KV_TIMEOUT', `${op} did not finish within ${timeoutMs} ms`)
  }
}

/**
 * A write reached at least one replica but not a quorum, or its outcome is
 * unknown: it may or may not have applied. Retrying with the same context is safe
 * (at worst it adds a sibling).
 */
export class IndeterminateWriteError extends KvorumError {
  readonly replicas: readonly ReplicaFailure[]
  constructor(message: string, replicas: readonly ReplicaFailure[]) {
    super('KV_INDETERMINATE_WRITE', message)
    this.replicas = replicas
  }
}

/**
 * A stored value that the store handle's codec cannot decode (bytes that are
 * not UTF-8 under `utf8`, text that is not JSON under `json`, or a custom
 * codec that threw): the data is as stored, the codec does not fit it.
 */
export class DecodeFailedError extends KvorumError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('KV_DECODE_FAILED', message, options)
  }
  static forKey(store: string, key: string, codec: string, cause: unknown): DecodeFailedError {
    const why = cause instanceof Error ? cause.message : String(cause)
    return new DecodeFailedError(
      `key ${key} of store ${store}: the stored value does not decode with the ${codec} codec (${why}); read it with another codec, or overwrite it`,
      { cause },
    )
  }
}

/**
 * The caller aborted the call through its `signal`. The call's `cause` is the
 * signal's reason. A write aborted after it was sent may still have applied
 * (as after a timeout): read the key to know.
 */
export class AbortedError extends KvorumError {
  constructor(op: string, reason: unknown) {
    const why = reason instanceof Error ? reason.message : reason === undefined ? 'no reason given' : String(reason)
    super('KV_ABORTED', `${op} was aborted by its signal (${why})`, { cause: reason })
  }
}

/**
 * A put's condition did not hold on what the coordinator's read quorum
 * returned; nothing was written. Conditions are best effort: two puts through
 * different coordinators can both pass their checks and leave siblings.
 */
export class ConditionFailedError extends KvorumError {
  constructor(op: string, why: string) {
    super(
      'KV_CONDITION_FAILED',
      `${op}: ${why}, so nothing was written (conditions are best effort: checked against a read quorum, so concurrent writers through other coordinators can still make siblings)`,
    )
  }
}

/** No seed answered with a cluster definition. */
export class BootstrapFailedError extends KvorumError {
  constructor(message: string) {
    super('KV_BOOTSTRAP_FAILED', message)
  }
}

/** The SDK client was closed; it takes no more operations. */
export class ClientClosedError extends KvorumError {
  constructor() {
    super('KV_CLOSED', 'this client is closed: connect again to use it')
  }
}

// Raised by the CLI.

/** A command needs an optional package this install lacks (`kvorum dev` and `kvorum bench` start kvorum-node). */
export class MissingPackageError extends KvorumError {
  constructor(pkg: string, why: string) {
    super('KV_MISSING_PACKAGE', `${why}: the ${pkg} package is not installed; npm install ${pkg}`)
  }
}

/** `kvorum import` was given a file that is not a whole, intact export it can read; nothing was imported. */
export class BadExportError extends KvorumError {
  constructor(message: string) {
    super('KV_BAD_EXPORT', message)
  }
}

/** A usage mistake on the command line: printed with the command's help, exit code 2. */
export class UsageError extends KvorumError {
  constructor(message: string) {
    super('KV_USAGE', message)
  }
}

/** `cluster init` met a node that already holds a different cluster definition. */
export class ClusterExistsError extends KvorumError {
  /** `advice` says what to do instead; the default is for `cluster init`. */
  constructor(
    url: string,
    version: number,
    advice = "init writes only a first definition; change nodes with kvorum cluster rebalance and stores with kvorum store create|alter, or wipe that node's data directory",
  ) {
    super('KV_CLUSTER_EXISTS', `${url} already holds cluster version ${version} with different settings: ${advice}`)
  }
}

/** A port a command would listen on is taken (`kvorum dev` checks its ports before starting a node). */
export class PortInUseError extends KvorumError {
  constructor(message: string) {
    super('KV_PORT_IN_USE', message)
  }
}

/** A data credential pushed a cluster definition that no admin secret the node accepts signed. */
export class UnsignedDefinitionError extends KvorumError {
  constructor(why: string) {
    super(
      'KV_UNSIGNED_DEFINITION',
      `${why}: a data credential may only relay a cluster definition signed with the admin secret; change the cluster with the admin credential`,
    )
  }
}

/** A plain-HTTP request reached a node that serves HTTPS only. */
export class TlsRequiredError extends KvorumError {
  constructor(message = 'this node serves HTTPS only: use an https:// URL (and the CA that signed its certificate)') {
    super('KV_TLS_REQUIRED', message)
  }
}

/**
 * An error whose code this version does not know, as a newer node may send.
 * Its code is KV_UNKNOWN_CODE and its message starts with the code that was sent.
 */
export class UnknownCodeError extends KvorumError {
  constructor(sentCode: string, message: string) {
    super('KV_UNKNOWN_CODE', `${sentCode}: ${message}`)
  }
}

/** Throw a programmer error when an invariant does not hold. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`assertion failed: ${message}`)
}
