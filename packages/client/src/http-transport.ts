import { Pool } from 'undici'
import {
  type ClusterDef, type CoordinateItem, type HintItem, type HintTarget, type KeySet, type NodeDef,
  type NodeHealth, type ScanRequest, KvorumError, NodeUnavailableError, decodeAckResults, decodeScanPage,
  decodeCoordinateResults, decodeSetResults, decodeStoredHints, encodeAcks, encodeCoordinate, encodeHints, encodeKeySets, encodeKeys,
  encodeScanRequest, encodeTombstoneRequest, decodeKeySets, errorFromWire, TimeoutError, type TombstoneRequest,
  type StoreBatch, decodeStoreBatchResults, encodeStoreBatch,
} from '@kvorum/core'
import type { NodeClient, RequestOptions, Transport } from './transport.js'

/** Options of the HTTP transport. */
export interface HttpTransportOptions {
  /** Bearer token sent with every request. Default none. */
  readonly token?: string
  /** Keep-alive connections per node. Default 8. */
  readonly connections?: number
}

const BINARY = { 'content-type': 'application/octet-stream' }
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT'])
/** Errors raised before a connection existed: the request cannot have reached the node. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL'])

/** The node protocol over HTTP/1.1 keep-alive, one undici Pool per node. */
export class HttpTransport implements Transport {
  private readonly pools = new Map<string, Pool>()
  private readonly clients = new Map<string, NodeClient>()
  onClusterVersion?: (version: number, node: NodeDef) => void

  constructor(private readonly options: HttpTransportOptions = {}) {}

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

  private async call(def: NodeDef, opts: RequestOptions, method: 'GET' | 'POST' | 'PUT', path: string, body?: Uint8Array | string, json = false): Promise<Uint8Array> {
    const headers: Record<string, string> = json ? { 'content-type': 'application/json' } : body ? { ...BINARY } : {}
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`
    let res
    try {
      // undici's own timeouts, not an AbortSignal per request: signals and their DOMExceptions were a visible share of client CPU.
      const timeout = Math.max(1, Math.ceil(opts.timeoutMs))
      res = await this.pool(def).request({ method, path, headers, body: body ?? null, headersTimeout: timeout, bodyTimeout: timeout })
    } catch (e) {
      const err = e as Error & { code?: string }
      if (TIMEOUT_CODES.has(err.code ?? '') || err.name === 'TimeoutError' || err.name === 'AbortError') throw new TimeoutError(`${method} ${def.id}${path}`, opts.timeoutMs)
      // Only a connection that was never made surely kept the request from the node.
      throw new NodeUnavailableError(def.id, `${err.code ?? err.name}: ${err.message}`, { cause: e, mayHaveApplied: !NOT_SENT_CODES.has(err.code ?? '') })
    }
    let bytes: Uint8Array
    try {
      bytes = new Uint8Array(await res.body.arrayBuffer())
    } catch (e) {
      const err = e as Error & { code?: string }
      if (TIMEOUT_CODES.has(err.code ?? '') || err.name === 'TimeoutError' || err.name === 'AbortError') throw new TimeoutError(`${method} ${def.id}${path}`, opts.timeoutMs)
      throw new NodeUnavailableError(def.id, `reading the answer failed: ${err.message}`, { cause: e, mayHaveApplied: true })
    }
    opts.onBytes?.(body === undefined ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : body.length, bytes.length)
    const version = Number(res.headers['x-kvorum-cluster-version'])
    if (version > 0) this.onClusterVersion?.(version, def)
    if (res.statusCode >= 400) {
      let parsed: { code: string; message: string; clusterVersion?: number }
      try {
        parsed = JSON.parse(Buffer.from(bytes).toString('utf8'))
      } catch {
        parsed = { code: 'KV_NODE_ERROR', message: `HTTP ${res.statusCode}` }
      }
      const error = errorFromWire(parsed)
      throw error instanceof KvorumError ? error : new NodeUnavailableError(def.id, parsed.message)
    }
    return bytes
  }

  private makeClient(def: NodeDef): NodeClient {
    const s = (store: string) => `/v1/stores/${encodeURIComponent(store)}`
    const t = (target: string) => `/v1/hints/${encodeURIComponent(target)}`
    const text = (b: Uint8Array) => Buffer.from(b).toString('utf8')
    return {
      coordinatePut: async (o, store: string, items: readonly CoordinateItem[]) => decodeCoordinateResults(await this.call(def, o, 'POST', `${s(store)}/coordinate`, encodeCoordinate(items))),
      mergePut: async (o, store: string, items: readonly KeySet[]) => decodeAckResults(await this.call(def, o, 'POST', `${s(store)}/merge`, encodeKeySets(items))),
      get: async (o, store: string, keys: readonly Uint8Array[]) => decodeSetResults(await this.call(def, o, 'POST', `${s(store)}/get`, encodeKeys(keys))),
      batch: async (o, store: string, batch: StoreBatch) => decodeStoreBatchResults(await this.call(def, o, 'POST', `${s(store)}/batch`, encodeStoreBatch(batch))),
      putHints: async (o, target: string, items: readonly HintItem[]) => decodeAckResults(await this.call(def, o, 'POST', t(target), encodeHints(items))),
      listHints: async (o, target: string, limit: number, afterId: number) => decodeStoredHints(await this.call(def, o, 'GET', `${t(target)}?limit=${limit}&after=${afterId}`)),
      deleteHints: async (o, target: string, acks: readonly { id: number; seq: number }[]) => (JSON.parse(text(await this.call(def, o, 'POST', `${t(target)}/ack`, encodeAcks(acks)))) as { deleted: number }).deleted,
      hintTargets: async (o) => JSON.parse(text(await this.call(def, o, 'GET', '/v1/hints'))) as HintTarget[],
      merkleRoots: async (o, store: string) => this.call(def, o, 'GET', `${s(store)}/merkle`),
      merkleBranches: async (o, store: string, p: number) => this.call(def, o, 'GET', `${s(store)}/merkle/${p}`),
      merkleLeaves: async (o, store: string, p: number, b: number) => this.call(def, o, 'GET', `${s(store)}/merkle/${p}/${b}`),
      scan: async (o, store: string, req: ScanRequest) => decodeScanPage(await this.call(def, o, 'POST', `${s(store)}/scan`, encodeScanRequest(req))),
      listTombstones: async (o, store: string, req: TombstoneRequest) => decodeKeySets(await this.call(def, o, 'POST', `${s(store)}/tombstones`, encodeTombstoneRequest(req)), 0, 1000),
      reap: async (o, store: string, items: readonly KeySet[]) => (JSON.parse(text(await this.call(def, o, 'POST', `${s(store)}/reap`, encodeKeySets(items)))) as { reaped: number }).reaped,
      getCluster: async (o) => {
        try {
          return JSON.parse(text(await this.call(def, o, 'GET', '/v1/cluster'))) as ClusterDef
        } catch (e) {
          if (e instanceof KvorumError && e.code === 'KV_NO_CLUSTER') return null
          throw e
        }
      },
      putCluster: async (o, cluster: ClusterDef) => {
        await this.call(def, o, 'PUT', '/v1/cluster', JSON.stringify(cluster), true)
      },
      health: async (o) => JSON.parse(text(await this.call(def, o, 'GET', '/health'))) as NodeHealth,
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close()))
    this.pools.clear()
    this.clients.clear()
  }
}
