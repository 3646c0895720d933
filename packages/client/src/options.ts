import type { NodeDef, Time } from '@kvorum/core'
import type { BatchOptions } from './batcher.js'
import type { RetryPolicy } from './call.js'
import type { FailureDetectorOptions } from './failure-detector.js'
import type { HttpTransportOptions, TlsOptions } from './http-transport.js'
import type { Transport } from './transport.js'

/** Options of `connect`. Every default is stated once, in CONNECT_DEFAULTS below. */
export interface ConnectOptions {
  /** Any node(s) of the cluster: URLs, or node definitions for the in-memory transport. */
  readonly seeds: readonly (string | NodeDef)[]
  /** The data credential (or, in the simple mode, the one cluster token), sent as a bearer token. Default none. */
  readonly token?: string | undefined
  /**
   * The admin credential, for clients that change the cluster (rebalance,
   * store changes): sent on admin routes, and the secret the definitions this
   * client writes are signed with. Default none. Applications leave it unset.
   */
  readonly adminToken?: string | undefined
  /** TLS for https:// seeds: the CA, and a client certificate and key when nodes require one. Default: Node's bundled CAs. */
  readonly tls?: TlsOptions | undefined
  /** How nodes are reached. Default: HTTP with undici. */
  readonly transport?: Transport | undefined
  /** Deadline of a whole operation, ms, retries and write-backs included. Default 3000. */
  readonly timeoutMs?: number | undefined
  /** Longest single node request, ms. Default 1000. */
  readonly requestTimeoutMs?: number | undefined
  /**
   * Reads ask r primaries and one more only if one fails or is slower than
   * `readSpeculateMs` (default), or every primary at once as Dynamo does
   * (`true`: more read repair, a third more read load).
   */
  readonly readFromAll?: boolean | undefined
  /** Ms before a read asks one more primary. Default 50. */
  readonly readSpeculateMs?: number | undefined
  /** Per-node coalescing of concurrent operations (see BatchOptions for each default). */
  readonly batch?: BatchOptions | undefined
  /** Failure detection settings (see FailureDetectorOptions for each default). */
  readonly detector?: FailureDetectorOptions | undefined
  /**
   * Map a node's advertised URL to the one this process should use (NAT,
   * proxies, tests that route through a fault proxy). Default: the URL as given.
   */
  readonly resolveUrl?: ((node: NodeDef) => string) | undefined
  /**
   * Ms between fetches of the cluster definition while idle (a busy client
   * learns of new versions from every answer). Each fetch also carries the
   * definition to nodes that lag. 0 disables. Default 10,000.
   */
  readonly pollIntervalMs?: number | undefined
  /**
   * Clock and timers. Default the real ones; the simulator passes virtual time. Deadlines and
   * intervals read `monotonicMs`; `now` (the wall clock) only stamps versions and judges expiry.
   */
  readonly time?: Time | undefined
  /**
   * Asked after a store call failed with a `retryable` error: ms to wait
   * before the SDK runs the call again, or undefined to give up. Retries stay
   * within the call's one deadline and its signal, at most MAX_CALL_ATTEMPTS
   * attempts. A retried write may add a sibling (as any retry with the same
   * context). Default none: no retries beyond the SDK's own (another
   * replica, a refresh after stale metadata).
   */
  readonly retry?: RetryPolicy | undefined
  /** Aborts `connect` itself (the bootstrap), not the client it returns. Default none. */
  readonly signal?: AbortSignal | undefined
}

/** The defaults of ConnectOptions. */
export const CONNECT_DEFAULTS = {
  timeoutMs: 3000,
  requestTimeoutMs: 1000,
  readFromAll: false,
  readSpeculateMs: 50,
  pollIntervalMs: 10_000,
} as const

/** The settings the operation rounds read, with defaults applied. */
export interface Settings {
  readonly timeoutMs: number
  readonly requestTimeoutMs: number
  readonly readFromAll: boolean
  readonly readSpeculateMs: number
  readonly pollIntervalMs: number
  readonly retry: RetryPolicy | undefined
}

/** The HTTP transport's options of `connect`'s: the credentials and TLS. */
export function transportOptionsOf(options: ConnectOptions): HttpTransportOptions {
  return {
    ...(options.token ? { token: options.token } : {}),
    ...(options.adminToken ? { adminToken: options.adminToken } : {}),
    ...(options.tls ? { tls: options.tls } : {}),
  }
}

export function settingsOf(options: ConnectOptions): Settings {
  return {
    timeoutMs: options.timeoutMs ?? CONNECT_DEFAULTS.timeoutMs,
    requestTimeoutMs: options.requestTimeoutMs ?? CONNECT_DEFAULTS.requestTimeoutMs,
    readFromAll: options.readFromAll ?? CONNECT_DEFAULTS.readFromAll,
    readSpeculateMs: options.readSpeculateMs ?? CONNECT_DEFAULTS.readSpeculateMs,
    pollIntervalMs: options.pollIntervalMs ?? CONNECT_DEFAULTS.pollIntervalMs,
    retry: options.retry,
  }
}
