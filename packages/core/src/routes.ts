import { fromUtf8, utf8 } from './bytes.js'
import { type ClusterDef, validateCluster } from './cluster.js'
import { InvalidInputError } from './errors.js'
import {
  decodeAckResults,
  decodeAcks,
  decodeHints,
  decodeKeySets,
  decodeKeys,
  decodeScanPage,
  decodeScanRequest,
  decodeSetResults,
  decodeStoreBatch,
  decodeStoreBatchResults,
  decodeStoredHints,
  decodeTombstoneRequest,
  encodeAckResults,
  encodeAcks,
  encodeHints,
  encodeKeySets,
  encodeKeys,
  encodeScanPage,
  encodeScanRequest,
  encodeSetResults,
  encodeStoreBatch,
  encodeStoreBatchResults,
  encodeStoredHints,
  encodeTombstoneRequest,
} from './messages.js'
import type { HealthOptions, HintTarget, NodeHealth, NodeProtocol } from './protocol.js'

/**
 * The node protocol's HTTP form, declared once: for every operation its
 * method, path, and the codecs of its request and answer. The node app
 * registers its routes from this table, the SDK's HTTP transport builds its
 * client from it, the in-memory transport takes its list of operations from
 * it, and the fuzzer its routes. Adding an operation to NodeProtocol is one
 * entry here (the table's type requires it) plus its engine method.
 */

/** An operation of the node protocol. */
export type Op = keyof NodeProtocol
/** The arguments of an operation. */
export type OpArgs<K extends Op> = Parameters<NodeProtocol[K]>
/** What an operation answers. */
export type OpAnswer<K extends Op> = Awaited<ReturnType<NodeProtocol[K]>>

/** A body's form on the wire: a binary frame (application/octet-stream), JSON, or no body. */
export type BodyForm = 'binary' | 'json' | 'none'

/** A request as the HTTP face sees it: path parameters, query parameters and body. */
export interface WireRequest {
  readonly params: Readonly<Record<string, string | undefined>>
  readonly query: Readonly<Record<string, string | undefined>>
  readonly body: Uint8Array
}

/** What a call puts on the wire: the values of the path and query parameters, and the body. */
export interface WireCall {
  readonly params?: Readonly<Record<string, string | number>>
  readonly query?: Readonly<Record<string, string | number>>
  readonly body?: Uint8Array
}

/**
 * Which credential a request needs: `open` needs none; `data` the data
 * credential (applications, hint delivery, repair); `admin` the admin
 * credential (the cluster definition: membership, rebalance stages, drops,
 * store changes); `metrics` the scrape credential (GET /metrics, which is not
 * in this table).
 */
export type Role = 'open' | 'data' | 'admin' | 'metrics'

/** One operation's HTTP form. */
export interface Route<K extends Op = Op> {
  readonly op: K
  readonly method: 'GET' | 'POST' | 'PUT'
  /** The credential the route needs. */
  readonly role: Role
  /**
   * An admin route a data credential may also call when the body is a cluster
   * definition signed with the admin secret (a client relaying a definition to
   * a lagging node). Default false.
   */
  readonly signedRelay?: boolean
  /** Path pattern (Hono syntax): `:name` segments are path parameters. Also the metric label of the route. */
  readonly path: string
  readonly request: BodyForm
  readonly answer: Exclude<BodyForm, 'none'>
  /** The arguments of a call as path parameters, query and body. */
  encodeRequest(...args: OpArgs<K>): WireCall
  /** The arguments back from a request; throws InvalidInputError past a protocol ceiling. */
  decodeRequest(req: WireRequest): OpArgs<K>
  encodeAnswer(answer: OpAnswer<K>): Uint8Array
  decodeAnswer(bytes: Uint8Array): OpAnswer<K>
  /**
   * The stable code the HTTP face answers instead of a null answer (a node
   * before `cluster init` has no definition: KV_NO_CLUSTER), and that a client
   * decodes back into null.
   */
  readonly nullAs?: string
}

/** Longest decimal integer a path or query parameter may hold. */
const MAX_PARAM_DIGITS = 9

/** A non-negative integer parameter; anything else is invalid input. */
export function intParam(text: string | undefined, what: string): number {
  if (text === undefined || !new RegExp(`^\\d{1,${MAX_PARAM_DIGITS}}$`).test(text))
    throw new InvalidInputError(`${what} must be a non-negative integer, got ${JSON.stringify(text)}`)
  return Number(text)
}

function param(req: WireRequest, name: string): string {
  const value = req.params[name]
  if (value === undefined) throw new InvalidInputError(`missing path parameter ${name}`)
  return value
}

const json = (value: unknown): Uint8Array => utf8(JSON.stringify(value))
const parseJson = (bytes: Uint8Array): unknown => JSON.parse(fromUtf8(bytes))
/** One number field of a JSON answer (`{reaped: 3}`). */
const jsonCount =
  (field: string) =>
  (bytes: Uint8Array): number =>
    (parseJson(bytes) as Record<string, number>)[field] as number
const store = (req: WireRequest) => param(req, 'store')
const target = (req: WireRequest) => param(req, 'target')

/** The `ready` query of /health: `?ready`, `?ready=1` or `?ready=true` ask for readiness; `0` or `false` for liveness. */
function readiness(text: string): HealthOptions {
  if (text === '' || text === '1' || text === 'true') return { ready: true }
  if (text === '0' || text === 'false') return { ready: false }
  throw new InvalidInputError(`ready must be 1, true, 0 or false, got ${JSON.stringify(text)}`)
}

/** Default page of GET /v1/hints/:target when the query names none. */
const DEFAULT_HINT_PAGE = 1000

type RouteTable = { readonly [K in Op]: Route<K> }

/** Every operation of the node protocol, by name. */
export const ROUTES: RouteTable = {
  mergePut: {
    op: 'mergePut',
    method: 'POST',
    role: 'data',
    path: '/v1/stores/:store/merge',
    request: 'binary',
    answer: 'binary',
    encodeRequest: (s, items) => ({ params: { store: s }, body: encodeKeySets(items) }),
    decodeRequest: (req) => [store(req), decodeKeySets(req.body)],
    encodeAnswer: encodeAckResults,
    decodeAnswer: decodeAckResults,
  },
  get: {
    op: 'get',
    method: 'POST',
    role: 'data',
    path: '/v1/stores/:store/get',
    request: 'binary',
    answer: 'binary',
    encodeRequest: (s, keys) => ({ params: { store: s }, body: encodeKeys(keys) }),
    decodeRequest: (req) => [store(req), decodeKeys(req.body)],
    encodeAnswer: encodeSetResults,
    decodeAnswer: decodeSetResults,
  },
  batch: {
    op: 'batch',
    method: 'POST',
    role: 'data',
    path: '/v1/stores/:store/batch',
    request: 'binary',
    answer: 'binary',
    encodeRequest: (s, batch) => ({ params: { store: s }, body: encodeStoreBatch(batch) }),
    decodeRequest: (req) => [store(req), decodeStoreBatch(req.body)],
    encodeAnswer: encodeStoreBatchResults,
    decodeAnswer: decodeStoreBatchResults,
  },
  putHints: {
    op: 'putHints',
    method: 'POST',
    role: 'data',
    path: '/v1/hints/:target',
    request: 'binary',
    answer: 'binary',
    encodeRequest: (t, items) => ({ params: { target: t }, body: encodeHints(items) }),
    decodeRequest: (req) => [target(req), decodeHints(req.body)],
    encodeAnswer: encodeAckResults,
    decodeAnswer: decodeAckResults,
  },
  listHints: {
    op: 'listHints',
    method: 'GET',
    role: 'data',
    path: '/v1/hints/:target',
    request: 'none',
    answer: 'binary',
    encodeRequest: (t, limit, afterId) => ({ params: { target: t }, query: { limit, after: afterId } }),
    decodeRequest: (req) => [target(req), intParam(req.query.limit ?? String(DEFAULT_HINT_PAGE), 'limit'), intParam(req.query.after ?? '0', 'after')],
    encodeAnswer: encodeStoredHints,
    decodeAnswer: decodeStoredHints,
  },
  deleteHints: {
    op: 'deleteHints',
    method: 'POST',
    role: 'data',
    path: '/v1/hints/:target/ack',
    request: 'binary',
    answer: 'json',
    encodeRequest: (t, acks) => ({ params: { target: t }, body: encodeAcks(acks) }),
    decodeRequest: (req) => [target(req), decodeAcks(req.body)],
    encodeAnswer: (deleted) => json({ deleted }),
    decodeAnswer: jsonCount('deleted'),
  },
  hintTargets: {
    op: 'hintTargets',
    method: 'GET',
    role: 'data',
    path: '/v1/hints',
    request: 'none',
    answer: 'json',
    encodeRequest: () => ({}),
    decodeRequest: () => [],
    encodeAnswer: json,
    decodeAnswer: (bytes) => parseJson(bytes) as HintTarget[],
  },
  merkleRoots: {
    op: 'merkleRoots',
    method: 'GET',
    role: 'data',
    path: '/v1/stores/:store/merkle',
    request: 'none',
    answer: 'binary',
    encodeRequest: (s) => ({ params: { store: s } }),
    decodeRequest: (req) => [store(req)],
    encodeAnswer: (roots) => roots,
    decodeAnswer: (bytes) => bytes,
  },
  merkleBranches: {
    op: 'merkleBranches',
    method: 'GET',
    role: 'data',
    path: '/v1/stores/:store/merkle/:partition',
    request: 'none',
    answer: 'binary',
    encodeRequest: (s, partition) => ({ params: { store: s, partition } }),
    decodeRequest: (req) => [store(req), intParam(req.params.partition, 'partition')],
    encodeAnswer: (branches) => branches,
    decodeAnswer: (bytes) => bytes,
  },
  merkleLeaves: {
    op: 'merkleLeaves',
    method: 'GET',
    role: 'data',
    path: '/v1/stores/:store/merkle/:partition/:branch',
    request: 'none',
    answer: 'binary',
    encodeRequest: (s, partition, branch) => ({ params: { store: s, partition, branch } }),
    decodeRequest: (req) => [store(req), intParam(req.params.partition, 'partition'), intParam(req.params.branch, 'branch')],
    encodeAnswer: (leaves) => leaves,
    decodeAnswer: (bytes) => bytes,
  },
  scan: {
    op: 'scan',
    method: 'POST',
    role: 'data',
    path: '/v1/stores/:store/scan',
    request: 'binary',
    answer: 'binary',
    encodeRequest: (s, req) => ({ params: { store: s }, body: encodeScanRequest(req) }),
    decodeRequest: (req) => [store(req), decodeScanRequest(req.body)],
    encodeAnswer: encodeScanPage,
    decodeAnswer: decodeScanPage,
  },
  listTombstones: {
    op: 'listTombstones',
    method: 'POST',
    role: 'data',
    path: '/v1/stores/:store/tombstones',
    request: 'binary',
    answer: 'binary',
    encodeRequest: (s, req) => ({ params: { store: s }, body: encodeTombstoneRequest(req) }),
    decodeRequest: (req) => [store(req), decodeTombstoneRequest(req.body)],
    encodeAnswer: encodeKeySets,
    decodeAnswer: decodeKeySets,
  },
  reap: {
    op: 'reap',
    method: 'POST',
    role: 'data',
    path: '/v1/stores/:store/reap',
    request: 'binary',
    answer: 'json',
    encodeRequest: (s, items) => ({ params: { store: s }, body: encodeKeySets(items) }),
    decodeRequest: (req) => [store(req), decodeKeySets(req.body)],
    encodeAnswer: (reaped) => json({ reaped }),
    decodeAnswer: jsonCount('reaped'),
  },
  getCluster: {
    op: 'getCluster',
    method: 'GET',
    role: 'data',
    path: '/v1/cluster',
    request: 'none',
    answer: 'json',
    nullAs: 'KV_NO_CLUSTER',
    encodeRequest: () => ({}),
    decodeRequest: () => [],
    encodeAnswer: json,
    decodeAnswer: (bytes) => parseJson(bytes) as ClusterDef,
  },
  putCluster: {
    op: 'putCluster',
    method: 'PUT',
    role: 'admin',
    signedRelay: true,
    path: '/v1/cluster',
    request: 'json',
    answer: 'json',
    encodeRequest: (def) => ({ body: json(def) }),
    decodeRequest: (req) => {
      let parsed: unknown
      try {
        parsed = parseJson(req.body)
      } catch {
        throw new InvalidInputError('cluster definition must be a JSON body')
      }
      return [validateCluster(parsed)]
    },
    encodeAnswer: () => json({ ok: true }),
    decodeAnswer: () => undefined,
  },
  // `/health` is liveness; `/health?ready=1` is readiness: 503 KV_NO_CLUSTER until a definition is held.
  health: {
    op: 'health',
    method: 'GET',
    role: 'open',
    path: '/health',
    request: 'none',
    answer: 'json',
    encodeRequest: (options) => (options?.ready ? { query: { ready: 1 } } : {}),
    decodeRequest: (req) => (req.query.ready === undefined ? [] : [readiness(req.query.ready)]),
    encodeAnswer: (health) => json({ status: 'ok', ...health }),
    decodeAnswer: (bytes) => {
      const { status: _status, ...health } = parseJson(bytes) as NodeHealth & { status?: string }
      return health
    },
  },
}

/** The routes in table order, for those that register or walk them all. */
export const ROUTE_LIST: readonly Route[] = Object.values(ROUTES) as Route[]

/** A call's path: the pattern with its parameters filled in (URL-encoded), then its query. */
/** Route paths split into literal text and parameter names, once per path (a regex replace per request showed in the SDK's profile). */
const PATH_PARTS = new Map<string, (string | { readonly param: string })[]>()

export function callPath(route: Route, call: WireCall): string {
  let parts = PATH_PARTS.get(route.path)
  if (!parts) {
    parts = route.path.split(/(:[a-z]+)/).map((part) => (part.startsWith(':') ? { param: part.slice(1) } : part))
    PATH_PARTS.set(route.path, parts)
  }
  let path = ''
  for (const part of parts) {
    if (typeof part === 'string') {
      path += part
      continue
    }
    const value = call.params?.[part.param]
    if (value === undefined) throw new Error(`assertion failed: no value for :${part.param} of ${route.path}`)
    path += encodeURIComponent(String(value))
  }
  const query = Object.entries(call.query ?? {}).map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`)
  return query.length > 0 ? `${path}?${query.join('&')}` : path
}
