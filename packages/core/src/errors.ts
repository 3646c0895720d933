/**
 * Every error Kvorum raises on purpose is a KvorumError with a stable `code`
 * that callers and the wire protocol can switch on. Programmer errors are
 * assertions (plain `Error`), not codes.
 */
export class KvorumError extends Error {
  /** Stable, machine-readable code, e.g. `KV_INVALID_INPUT`. */
  readonly code: string
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
  toJSON(): { code: string; message: string } {
    return { code: this.code, message: this.message }
  }
}

/** Bad input from a caller: wrong sizes, malformed frames, bad clocks. Nothing was changed. */
export class InvalidInputError extends KvorumError {
  constructor(message: string) {
    super('KV_INVALID_INPUT', message)
  }
}

/** The store is not in the cluster definition this party holds. */
export class UnknownStoreError extends KvorumError {
  constructor(store: string) {
    super('KV_UNKNOWN_STORE', `unknown store "${store}": create it in the cluster definition (kvorum cluster init --store ${store}:n=3,r=2,w=2)`)
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
}

/** A node that has not been given a cluster definition yet. */
export class NoClusterError extends KvorumError {
  constructor() {
    super('KV_NO_CLUSTER', 'this node has no cluster definition yet: run `kvorum cluster init --nodes ...` against it')
  }
}

/** A key would hold more siblings than the store allows; resolve them with a merge function first. */
export class TooManySiblingsError extends KvorumError {
  constructor(message: string) {
    super('KV_TOO_MANY_SIBLINGS', message)
  }
  static forKey(key: string, siblings: number, limit: number): TooManySiblingsError {
    return new TooManySiblingsError(`key ${key} would hold ${siblings} siblings, over the limit of ${limit}: read it and write back a merged value with its context (or give the store a merge function)`)
  }
}

/** A fallback node refused a hint because its backlog for that target is full. */
export class HintBacklogFullError extends KvorumError {
  constructor(target: string, limit: number) {
    super('KV_HINT_BACKLOG_FULL', `hint backlog for ${target} is full (${limit} keys); anti-entropy will repair what is not hinted`)
  }
}

/** The request needs a token the caller did not present. */
export class UnauthorizedError extends KvorumError {
  constructor() {
    super('KV_UNAUTHORIZED', 'missing or wrong token: pass the cluster token (Authorization: Bearer <token>)')
  }
}

/** One replica's failure, as carried by quorum errors. */
export interface ReplicaFailure {
  readonly node: string
  readonly code: string
  readonly message: string
}

/** Fewer replicas answered than the quorum needs. */
export class QuorumNotMetError extends KvorumError {
  readonly replicas: readonly ReplicaFailure[]
  readonly needed: number
  readonly acknowledged: number
  constructor(op: string, needed: number, acknowledged: number, replicas: readonly ReplicaFailure[], what = 'replicas') {
    const detail = replicas.map((r) => `${r.node}: ${r.code} ${r.message}`).join('; ')
    super('KV_QUORUM_NOT_MET', `${op} needed ${needed} ${what} but ${acknowledged} answered${detail ? ` (${detail})` : ''}`)
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

/** Rebuild a typed error from a wire `{code, message}` body. */
export function errorFromWire(body: { code: string; message: string; clusterVersion?: number }): KvorumError {
  if (body.code === 'KV_STALE_METADATA') return new StaleMetadataError(body.message, body.clusterVersion ?? 0)
  if (body.code === 'KV_TOO_MANY_SIBLINGS') return new TooManySiblingsError(body.message)
  if (body.code === 'KV_INVALID_INPUT') return new InvalidInputError(body.message)
  if (body.code === 'KV_UNKNOWN_STORE') return new KvorumError(body.code, body.message)
  return new KvorumError(body.code, body.message)
}

/** Throw a programmer error when an invariant does not hold. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`assertion failed: ${message}`)
}
