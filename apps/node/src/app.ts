import { randomBytes } from 'node:crypto'
import { Hono, type Context } from 'hono'
import type { Logger } from 'pino'
import {
  InvalidInputError,
  LIMITS,
  LengthRequiredError,
  NoClusterError,
  PayloadTooLargeError,
  ROUTE_LIST,
  type Route,
  RouteNotFoundError,
  UnsupportedMediaTypeError,
} from '@kvorum/core'
import type { StorageEngine } from '@kvorum/storage'
import { guard } from './auth.js'
import { Credentials } from './credentials.js'
import { serveCheck } from './check-route.js'
import { errorResponse } from './errors.js'
import { nodeMetrics } from './metrics.js'

export interface AppOptions {
  readonly engine: StorageEngine
  readonly logger: Logger
  /** When set, every request but /health must carry `Authorization: Bearer <token>`. Default none. */
  readonly token?: string
  /** When set, GET /metrics also takes `Authorization: Bearer <metricsToken>` (and nothing else does). Default none. */
  readonly metricsToken?: string
  /** The secrets by role (the node's flags); when set, `token` and `metricsToken` are not read. Default from those two. */
  readonly credentials?: Credentials
}

/** A request id a caller may choose (`x-request-id`); anything else is replaced by one of ours. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

const BINARY = 'application/octet-stream'
const JSON_TYPE = 'application/json'
const EMPTY = new Uint8Array(0)

/** A request's body as the route takes it: a binary frame must say so in its content type. */
async function body(c: Context, route: Route): Promise<Uint8Array> {
  if (route.request === 'none') return EMPTY
  if (route.request === 'binary') {
    const type = c.req.header('content-type') ?? ''
    if (!type.startsWith(BINARY)) throw new UnsupportedMediaTypeError(BINARY, type)
  }
  return new Uint8Array(await c.req.arrayBuffer())
}

/** The query of a request, parsed only if a route reads it (most take none). */
function lazyQuery(c: Context): Record<string, string | undefined> {
  let query: Record<string, string> | undefined
  return new Proxy({} as Record<string, string | undefined>, {
    get(_, name) {
      if (typeof name !== 'string') return undefined
      query ??= c.req.query()
      return query[name]
    },
  })
}

/** Serve one route of the table: decode, call the engine, encode. The engine resolves the store (once) and checks its limits. */
async function serve(c: Context, route: Route, engine: StorageEngine): Promise<Response> {
  const args = route.decodeRequest({ params: c.req.param(), query: lazyQuery(c), body: await body(c, route) })
  const answer = await (engine[route.op] as (...a: unknown[]) => Promise<unknown>).apply(engine, args)
  if (answer === null && route.nullAs) {
    const absent = new NoClusterError()
    if (absent.code !== route.nullAs) throw new Error(`assertion failed: route ${route.path} answers null as ${route.nullAs}, which the app cannot raise`)
    throw absent
  }
  const bytes = (route.encodeAnswer as (a: unknown) => Uint8Array)(answer)
  // Every header in one plain object: set on the answer afterwards, they made the HTTP server
  // build a Headers object for each request (see the first middleware).
  c.set('headed', true)
  return new Response(bytes as Uint8Array<ArrayBuffer>, {
    status: 200,
    headers: {
      'content-type': route.answer === 'binary' ? BINARY : JSON_TYPE,
      'x-kvorum-cluster-version': String(engine.clusterVersion),
      'x-request-id': c.get('requestId'),
    },
  })
}

/** The storage node's HTTP face: the routes of the node protocol's table (ROUTES in @kvorum/core), plus /metrics. */
export function createApp({ engine, logger, token, metricsToken, credentials }: AppOptions) {
  const app = new Hono<{ Variables: { requestId: string; headed: boolean } }>()
  const metrics = nodeMetrics(engine)
  // Request ids: a random prefix per app (so restarts do not repeat them) and a counter, cheaper than a UUID each.
  const idPrefix = randomBytes(4).toString('hex')
  let requests = 0

  app.use(async (c, next) => {
    const started = performance.now()
    const asked = c.req.header('x-request-id')
    const requestId = asked !== undefined && REQUEST_ID.test(asked) ? asked : `${idPrefix}-${(++requests).toString(36)}`
    c.set('requestId', requestId)
    await next()
    const route = c.req.routePath
    const seconds = (performance.now() - started) / 1000
    metrics.requests.inc({ route, status: String(c.res.status) })
    metrics.latency.observe({ route }, seconds)
    // A route's answer carries them already (serve); refusals, /metrics and the check route get them here.
    if (c.get('headed') !== true) {
      c.res.headers.set('x-kvorum-cluster-version', String(engine.clusterVersion))
      c.res.headers.set('x-request-id', requestId)
    }
    if (logger.isLevelEnabled('debug'))
      logger.debug({ reqId: requestId, method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(seconds * 1e6) / 1000 }, 'request')
  })
  const secrets = credentials ?? new Credentials({ all: token ? [token] : [], data: [], admin: [], metrics: metricsToken ? [metricsToken] : [] })
  const auth = guard(secrets, logger, (c) => c.get('requestId'))
  app.use(auth.authenticate)
  // Hono's bodyLimit touches the web Request body, which makes @hono/node-server build a
  // full Request and stream for every call (~10% of a node's CPU under load). Checking
  // Content-Length keeps the body on the direct path; a body without one is refused.
  app.use(async (c, next) => {
    if (c.req.method !== 'POST' && c.req.method !== 'PUT') return next()
    const length = c.req.header('content-length')
    // In-process (app.request in tests) there is no socket and the body is already in memory.
    if (length === undefined && !(c.env as { incoming?: unknown } | undefined)?.incoming) return next()
    if (length === undefined || c.req.header('transfer-encoding') !== undefined) throw new LengthRequiredError()
    if (!/^\d{1,12}$/.test(length)) throw new InvalidInputError(`bad Content-Length ${JSON.stringify(length)}`)
    if (Number(length) > LIMITS.maxFrameBytes) throw new PayloadTooLargeError(LIMITS.maxFrameBytes)
    return next()
  })

  serveCheck(app, engine, logger, auth.authorize('admin'))
  app.get('/metrics', auth.authorize('metrics'), async (c) => c.text(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType }))
  for (const route of ROUTE_LIST) {
    const handler = async (c: Context) => {
      const res = await serve(c, route, engine)
      if (route.op === 'putCluster') logger.info({ version: (await engine.getCluster())?.version }, 'cluster definition installed')
      return res
    }
    if (route.role === 'open') app.on(route.method, route.path, handler)
    else app.on(route.method, route.path, auth.authorize(route.role, route), handler)
  }

  app.notFound((c) => {
    const { status, body: err } = errorResponse(new RouteNotFoundError(c.req.method, c.req.path))
    return c.json(err, status as 404)
  })
  app.onError((e, c) => {
    const { status, body: err } = errorResponse(e)
    if (status >= 500 && err.code === 'KV_INTERNAL') logger.error({ err: e, reqId: c.get('requestId'), path: c.req.path }, 'request failed')
    else logger.debug({ reqId: c.get('requestId'), code: err.code, path: c.req.path }, 'request refused')
    return c.json(err, status as 400)
  })
  return app
}
