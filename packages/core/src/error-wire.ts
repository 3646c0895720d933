import { ERROR_CODES, type ErrorCode, type ErrorSpec, type WireError, isErrorCode } from './error-codes.js'
import {
  KvorumError,
  InvalidInputError,
  UnauthorizedError,
  UnknownStoreError,
  TooManySiblingsError,
  PayloadTooLargeError,
  LengthRequiredError,
  UnsupportedMediaTypeError,
  ClusterVersionConflictError,
  StaleMetadataError,
  RouteNotFoundError,
  NoClusterError,
  OverloadedError,
  NodeClosedError,
  HintBacklogFullError,
  DataDirError,
  DataFormatError,
  DiskFullError,
  DataCorruptError,
  ListenFailedError,
  InternalError,
  NodeUnavailableError,
  NodeDownError,
  NodeError,
  ClientOverloadedError,
  QuorumNotMetError,
  TimeoutError,
  IndeterminateWriteError,
  BootstrapFailedError,
  ClientClosedError,
  DecodeFailedError,
  AbortedError,
  UsageError,
  ClusterExistsError,
  PortInUseError,
  UnknownCodeError,
  MissingPackageError,
  UnsignedDefinitionError,
  TlsRequiredError,
} from './errors.js'

/*
 * Reading a failure: rebuild a received error as its code's class, and ask
 * the registry what a failure means for the caller (status, fatal, may have
 * applied). The SDK and the node use these instead of switching on codes.
 */

/** An error as received, before its code is checked against the registry. */
export interface ReceivedError {
  readonly code: string
  readonly message: string
  readonly clusterVersion?: number
}

/** An error's own fields beyond code and message: what a rebuild from the wire must fill in. */
type OwnFields<E extends KvorumError> = Omit<E, keyof KvorumError>

/**
 * An instance of `cls` with the message as the sender built it. The classes'
 * constructors build messages from what the raising party knows (a store name,
 * a limit); a received error has only the finished message, so this runs the
 * base constructor with `cls` as the class and sets the subclass's fields.
 */
function rebuilt<E extends KvorumError>(cls: abstract new (...args: never[]) => E, wire: WireError, fields: OwnFields<E>): E {
  const e = Reflect.construct(KvorumError, [wire.code, wire.message], cls) as E
  return Object.assign(e, fields)
}

/** One rebuild per code, so a code without a class fails to compile. Fields that do not travel are left empty. */
const FROM_WIRE = {
  KV_INVALID_INPUT: (w) => rebuilt(InvalidInputError, w, {}),
  KV_UNAUTHORIZED: (w) => rebuilt(UnauthorizedError, w, {}),
  KV_UNKNOWN_STORE: (w) => rebuilt(UnknownStoreError, w, {}),
  KV_TOO_MANY_SIBLINGS: (w) => rebuilt(TooManySiblingsError, w, {}),
  KV_PAYLOAD_TOO_LARGE: (w) => rebuilt(PayloadTooLargeError, w, {}),
  KV_LENGTH_REQUIRED: (w) => rebuilt(LengthRequiredError, w, {}),
  KV_UNSUPPORTED_MEDIA_TYPE: (w) => rebuilt(UnsupportedMediaTypeError, w, {}),
  KV_CLUSTER_VERSION_CONFLICT: (w) => rebuilt(ClusterVersionConflictError, w, {}),
  KV_STALE_METADATA: (w) => rebuilt(StaleMetadataError, w, { clusterVersion: w.clusterVersion ?? 0 }),
  KV_NOT_FOUND: (w) => rebuilt(RouteNotFoundError, w, {}),
  KV_NO_CLUSTER: (w) => rebuilt(NoClusterError, w, {}),
  KV_OVERLOADED: (w) => rebuilt(OverloadedError, w, {}),
  KV_NODE_CLOSED: (w) => rebuilt(NodeClosedError, w, {}),
  KV_HINT_BACKLOG_FULL: (w) => rebuilt(HintBacklogFullError, w, {}),
  KV_DATA_FORMAT: (w) => rebuilt(DataFormatError, w, {}),
  KV_DISK_FULL: (w) => rebuilt(DiskFullError, w, {}),
  KV_DATA_CORRUPT: (w) => rebuilt(DataCorruptError, w, {}),
  KV_LISTEN_FAILED: (w) => rebuilt(ListenFailedError, w, {}),
  KV_DATA_DIR: (w) => rebuilt(DataDirError, w, {}),
  KV_INTERNAL: (w) => rebuilt(InternalError, w, {}),
  // Only the SDK knows whether the request left; a received one claims the worst.
  KV_NODE_UNAVAILABLE: (w) => rebuilt(NodeUnavailableError, w, { mayHaveApplied: true }),
  KV_NODE_DOWN: (w) => rebuilt(NodeDownError, w, {}),
  KV_NODE_ERROR: (w) => rebuilt(NodeError, w, {}),
  KV_CLIENT_OVERLOADED: (w) => rebuilt(ClientOverloadedError, w, {}),
  KV_QUORUM_NOT_MET: (w) => rebuilt(QuorumNotMetError, w, { replicas: [], needed: 0, acknowledged: 0 }),
  KV_TIMEOUT: (w) => rebuilt(TimeoutError, w, {}),
  KV_INDETERMINATE_WRITE: (w) => rebuilt(IndeterminateWriteError, w, { replicas: [] }),
  KV_BOOTSTRAP_FAILED: (w) => rebuilt(BootstrapFailedError, w, {}),
  KV_CLOSED: (w) => rebuilt(ClientClosedError, w, {}),
  KV_DECODE_FAILED: (w) => rebuilt(DecodeFailedError, w, {}),
  KV_ABORTED: (w) => rebuilt(AbortedError, w, {}),
  KV_USAGE: (w) => rebuilt(UsageError, w, {}),
  KV_CLUSTER_EXISTS: (w) => rebuilt(ClusterExistsError, w, {}),
  KV_PORT_IN_USE: (w) => rebuilt(PortInUseError, w, {}),
  KV_UNSIGNED_DEFINITION: (w) => rebuilt(UnsignedDefinitionError, w, {}),
  KV_TLS_REQUIRED: (w) => rebuilt(TlsRequiredError, w, {}),
  KV_UNKNOWN_CODE: (w) => rebuilt(UnknownCodeError, w, {}),
  KV_MISSING_PACKAGE: (w) => rebuilt(MissingPackageError, w, {}),
} satisfies Record<ErrorCode, (wire: WireError) => KvorumError>

/**
 * A received error with its code checked: a code this version does not know
 * becomes KV_UNKNOWN_CODE, its message prefixed with the code that was sent,
 * so nothing past this point meets a code outside the registry.
 */
export function receivedError(body: ReceivedError): WireError {
  if (!isErrorCode(body.code)) return { code: 'KV_UNKNOWN_CODE', message: `${body.code}: ${body.message}` }
  return body.clusterVersion === undefined
    ? { code: body.code, message: body.message }
    : { code: body.code, message: body.message, clusterVersion: body.clusterVersion }
}

/**
 * Rebuild a typed error from a wire `{code, message}` body: an instance of the
 * code's class, with the message as sent. A code this version does not know
 * gives an UnknownCodeError. Fields that do not travel (a quorum error's
 * replicas) are empty; NodeUnavailableError's `mayHaveApplied` is true.
 */
export function errorFromWire(body: ReceivedError): KvorumError {
  const wire = receivedError(body)
  return FROM_WIRE[wire.code](wire)
}

/** The typed error of a failed batch item. */
export function errorFromItem(item: ReceivedError): KvorumError {
  return errorFromWire(item)
}

/**
 * The registry code of any failure: a code, an error or an item error. A code
 * this version does not know (a newer node's, or a Node.js `ECONNRESET`) is
 * KV_UNKNOWN_CODE; a throw without a string code (a bug) is KV_INTERNAL, as the
 * node answers it.
 */
export function codeOf(failure: unknown): ErrorCode {
  const code = typeof failure === 'string' ? failure : (failure as { code?: unknown } | null | undefined)?.code
  if (typeof code !== 'string') return 'KV_INTERNAL'
  return isErrorCode(code) ? code : 'KV_UNKNOWN_CODE'
}

/** The registry entry of any failure (see codeOf). */
export function errorSpec(failure: unknown): ErrorSpec {
  return ERROR_CODES[codeOf(failure)]
}

/** HTTP status for any failure: the registry's, 500 for a throw without a code. */
export function statusOf(failure: unknown): number {
  return errorSpec(failure).status
}

/** True when retrying the operation on another replica cannot help (see ErrorSpec.fatal). */
export function isFatal(failure: unknown): boolean {
  return errorSpec(failure).fatal
}

/** True when the same call may succeed later, unchanged (see ErrorSpec.retryable). */
export function isRetryable(failure: unknown): boolean {
  return errorSpec(failure).retryable
}

/**
 * True when a write that failed with `failure` may still have applied. A
 * NodeUnavailableError answers for itself (it knows whether the request left);
 * every other failure by its code.
 */
export function mayHaveApplied(failure: unknown): boolean {
  if (failure instanceof NodeUnavailableError) return failure.mayHaveApplied
  return errorSpec(failure).mayHaveApplied
}
