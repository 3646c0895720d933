import { type Dispatcher, Pool } from 'undici'
import {
  type NodeDef,
  type Op,
  type Route,
  ClientClosedError,
  type ClusterDef,
  KvorumError,
  NodeUnavailableError,
  ROUTES,
  TimeoutError,
  callPath,
  errorFromWire,
  signCluster,
} from '@kvorum/core'
import type { NodeClient, RequestOptions, Transport } from './transport.js'

/** One HTTP request to a node, as the transport makes it. */
export interface HttpExchange {
  readonly method: 'GET' | 'POST' | 'PUT'
  /** Path and query. */
  readonly path: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: Uint8Array | null
  readonly timeoutMs: number
}

/** A node's answer: status, the cluster version header, and the body. */
export interface HttpAnswer {
  readonly status: number
  /** `x-kvorum-cluster-version`, when the node sent it. */
  readonly clusterVersion?: string
  readonly body: Uint8Array
}

/** TLS settings for nodes served over https:// URLs (PEM text). The node's name (host or IP of its URL) is always verified. */
export interface TlsOptions {
  /** The CA certificate(s) that signed the nodes' certificates. Default: Node's bundled public CAs. */
  readonly ca?: string | Buffer | undefined
  /** A client certificate, for nodes that require one (kvorum-node --tls-client-ca). Default none. */
  readonly cert?: string | Buffer | undefined
  /** The client certificate's private key. Default none. */
  readonly key?: string | Buffer | undefined
}

/** Options of the HTTP transport. */
export interface HttpTransportOptions {
  /** Bearer token sent with every request (the data credential; in the simple mode, the one token for every role). Default none. */
  readonly token?: string | undefined
  /**
   * The admin credential: sent instead of `token` on admin routes (writing
   * the cluster definition), and the secret every definition this transport
   * writes is signed with, so that data credentials can relay it. Default
   * none: `token` is sent, and definitions go unsigned.
   */
  readonly adminToken?: string | undefined
  /** TLS settings for https:// nodes. Default: Node's bundled CAs, no client certificate. */
  readonly tls?: TlsOptions | undefined
  /** Keep-alive connections per node. Default 8. */
  readonly connections?: number | undefined
  /**
   * Sends one request to a node. Default: an undici Pool per node URL, with
   * connection and timeout failures mapped to NodeUnavailableError and
   * TimeoutError. Tests pass one that calls a Hono app in-process.
   */
  readonly exchange?: ((def: NodeDef, req: HttpExchange) => Promise<HttpAnswer>) | undefined
}

const CONTENT_TYPE = { binary: 'application/octet-stream', json: 'application/json' } as const
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT'])
/** Errors raised before a connection existed: the request cannot have reached the node. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL'])
/** Certificate checks that fail when the node's certificate is not signed by the CA given. */
const UNTRUSTED_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_SIGNATURE_FAILURE',
])

/**
 * What a TLS failure means, in the words an operator acts on; undefined when
 * `err` is no TLS failure. None of them let the request reach the node.
 */
function tlsFailure(err: Error & { code?: string }): string | undefined {
  const code = err.code ?? ''
  if (UNTRUSTED_CODES.has(code)) return "the node's certificate is not signed by the CA given (--tls-ca, or connect's tls.ca)"
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return "the node's certificate does not name the host or IP of its URL"
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') return "the node's certificate is outside its validity dates"
  if (/CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA/.test(code))
    return 'the node refused this client: it requires a client certificate its CA signed (--tls-cert and --tls-key, or tls.cert and tls.key)'
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') return 'the node does not serve TLS (use an http:// URL)'
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code === 'EPROTO') return 'the TLS handshake failed'
  return undefined
}

/** The node protocol over HTTP/1.1 keep-alive, one undici Pool per node. */
export class HttpTransport implements Transport {
  private readonly pools = new Map<string, Pool>()
  private readonly clients = new Map<string, NodeClient>()
  /** Set by close(): later calls fail with KV_CLOSED instead of opening new pools. */
  private closed = false
  onClusterVersion?: (version: number, node: NodeDef) => void

  private readonly exchange: (def: NodeDef, req: HttpExchange) => Promise<HttpAnswer>

  constructor(private readonly options: HttpTransportOptions = {}) {
    this.exchange = options.exchange ?? ((def, req) => this.undici(def, req))
  }

  node(def: NodeDef): NodeClient {
    const key = `${def.id}@${def.url}`
    let client = this.clients.get(key)
    if (!client) {
      client = this.makeClient(def)
      this.clients.set(key, client)
    }
    return client
  }

  private pool(def: NodeDef): Pool {
    let pool = this.pools.get(def.url)
    if (!pool) {
      const tls = this.options.tls
      const connect = { timeout: 2000, ...(tls?.ca ? { ca: tls.ca } : {}), ...(tls?.cert ? { cert: tls.cert } : {}), ...(tls?.key ? { key: tls.key } : {}) }
      pool = new Pool(def.url, { connections: this.options.connections ?? 8, pipelining: 1, keepAliveTimeout: 30_000, connect })
      this.pools.set(def.url, pool)
    }
    return pool
  }

  /** The default exchange: undici over the node's Pool. */
  private async undici(def: NodeDef, req: HttpExchange): Promise<HttpAnswer> {
    let res: Dispatcher.ResponseData
    try {
      // undici's own timeouts, not an AbortSignal per request: signals and their DOMExceptions were a visible share of client CPU.
      const timeout = Math.max(1, Math.ceil(req.timeoutMs))
      res = await this.pool(def).request({
        method: req.method,
        path: req.path,
        headers: req.headers,
        body: req.body,
        headersTimeout: timeout,
        bodyTimeout: timeout,
      })
    } catch (e) {
      const err = e as Error & { code?: string }
      if (TIMEOUT_CODES.has(err.code ?? '') || err.name === 'TimeoutError' || err.name === 'AbortError')
        throw new TimeoutError(`${req.method} ${def.id}${req.path}`, req.timeoutMs)
      const tls = tlsFailure(err) ?? tlsFailure((err.cause ?? {}) as Error & { code?: string })
      if (tls) throw new NodeUnavailableError(def.id, `TLS: ${tls} (${err.code ?? err.name}: ${err.message})`, { cause: e, mayHaveApplied: false })
      // Only a connection that was never made surely kept the request from the node.
      throw new NodeUnavailableError(def.id, `${err.code ?? err.name}: ${err.message}`, { cause: e, mayHaveApplied: !NOT_SENT_CODES.has(err.code ?? '') })
    }
    let body: Uint8Array
    try {
      body = new Uint8Array(await res.body.arrayBuffer())
    } catch (e) {
      const err = e as Error & { code?: string }
      if (TIMEOUT_CODES.has(err.code ?? '') || err.name === 'TimeoutError' || err.name === 'AbortError')
        throw new TimeoutError(`${req.method} ${def.id}${req.path}`, req.timeoutMs)
      throw new NodeUnavailableError(def.id, `reading the answer failed: ${err.message}`, { cause: e, mayHaveApplied: true })
    }
    const version = res.headers['x-kvorum-cluster-version']
    return typeof version === 'string' ? { status: res.statusCode, clusterVersion: version, body } : { status: res.statusCode, body }
  }

  /**
   * One request outside the node protocol (an operator's route, such as
   * GET /v1/check), made with this transport's connections and TLS settings
   * and its failures told as a protocol call's are ("TLS: ..." naming what to
   * fix). The caller sets the headers (its credential) and reads the answer.
   */
  send(def: NodeDef, req: HttpExchange): Promise<HttpAnswer> {
    if (this.closed) return Promise.reject(new ClientClosedError())
    return this.exchange(def, req)
  }

  /** One call of an operation, made as its route says. */
  private async call(def: NodeDef, route: Route, opts: RequestOptions, args: unknown[]): Promise<unknown> {
    if (this.closed) throw new ClientClosedError()
    const admin = this.options.adminToken
    // A definition this client writes is signed, so a client holding only the data credential can carry it to a node that lags.
    const sent = admin && route.op === 'putCluster' ? [signCluster(args[0] as ClusterDef, admin)] : args
    const call = (route.encodeRequest as (...a: unknown[]) => ReturnType<Route['encodeRequest']>)(...sent)
    const headers: Record<string, string> = route.request === 'none' ? {} : { 'content-type': CONTENT_TYPE[route.request] }
    const token = route.role === 'admin' ? (admin ?? this.options.token) : this.options.token
    if (token) headers.authorization = `Bearer ${token}`
    const req: HttpExchange = { method: route.method, path: callPath(route, call), headers, body: call.body ?? null, timeoutMs: opts.timeoutMs }
    const res = await this.exchange(def, req)
    const bytesSent = req.body === null ? 0 : typeof req.body === 'string' ? Buffer.byteLength(req.body) : req.body.length
    opts.onBytes?.(bytesSent, res.body.length)
    // 0 means the node holds no definition at all (new or wiped): the client then hands it one.
    const version = res.clusterVersion === undefined ? Number.NaN : Number(res.clusterVersion)
    if (Number.isInteger(version) && version >= 0) this.onClusterVersion?.(version, def)
    if (res.status >= 400) {
      let parsed: { code: string; message: string; clusterVersion?: number }
      try {
        parsed = JSON.parse(Buffer.from(res.body).toString('utf8'))
      } catch {
        parsed = { code: 'KV_NODE_ERROR', message: `HTTP ${res.status}` }
      }
      if (route.nullAs !== undefined && parsed.code === route.nullAs) return null
      const error = errorFromWire(parsed)
      throw error instanceof KvorumError ? error : new NodeUnavailableError(def.id, parsed.message)
    }
    return route.decodeAnswer(res.body)
  }

  /** The node's client: one method per route of the table. */
  private makeClient(def: NodeDef): NodeClient {
    const method =
      (route: Route) =>
      (opts: RequestOptions, ...args: unknown[]) =>
        this.call(def, route, opts, args)
    return Object.fromEntries(Object.entries(ROUTES).map(([op, route]) => [op as Op, method(route as Route)])) as unknown as NodeClient
  }

  /** Release every connection; the transport takes no more requests (KV_CLOSED). */
  async close(): Promise<void> {
    this.closed = true
    await Promise.all([...this.pools.values()].map((p) => p.close()))
    this.pools.clear()
    this.clients.clear()
  }
}
