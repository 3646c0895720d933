import { type Dispatcher, Pool } from 'undici'
import {
  type NodeDef,
  type Op,
  type Route,
  ClientClosedError,
  KvorumError,
  NodeUnavailableError,
  ROUTES,
  TimeoutError,
  callPath,
  errorFromWire,
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

/** Options of the HTTP transport. */
export interface HttpTransportOptions {
  /** Bearer token sent with every request. Default none. */
  readonly token?: string | undefined
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
      pool = new Pool(def.url, { connections: this.options.connections ?? 8, pipelining: 1, keepAliveTimeout: 30_000, connect: { timeout: 2000 } })
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

  /** One call of an operation, made as its route says. */
  private async call(def: NodeDef, route: Route, opts: RequestOptions, args: unknown[]): Promise<unknown> {
    if (this.closed) throw new ClientClosedError()
    const call = (route.encodeRequest as (...a: unknown[]) => ReturnType<Route['encodeRequest']>)(...args)
    const headers: Record<string, string> = route.request === 'none' ? {} : { 'content-type': CONTENT_TYPE[route.request] }
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`
    const req: HttpExchange = { method: route.method, path: callPath(route, call), headers, body: call.body ?? null, timeoutMs: opts.timeoutMs }
    const res = await this.exchange(def, req)
    const sent = req.body === null ? 0 : typeof req.body === 'string' ? Buffer.byteLength(req.body) : req.body.length
    opts.onBytes?.(sent, res.body.length)
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
