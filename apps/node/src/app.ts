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
  UnauthorizedError,
  UnsupportedMediaTypeError,
} from '@kvorum/core'
import type { StorageEngine } from '@kvorum/storage'
import { errorResponse } from './errors.js'
import { nodeMetrics } from './metrics.js'

export interface AppOptions {
  readonly engine: StorageEngine
  readonly logger: Logger
  /** When set, every request but /health must carry `Authorization: Bearer <token>`. */
  readonly token?: string
}

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

/** Serve one route of the table: decode, call the engine, encode. The engine resolves the store (once) and checks its limits. */
async function serve(c: Context, route: Route, engine: StorageEngine): Promise<Response> {
  const args = route.decodeRequest({ params: c.req.param(), query: c.req.query(), body: await body(c, route) })
  const answer = await (engine[route.op] as (...a: unknown[]) => Promise<unknown>).apply(engine, args)
  if (answer === null && route.nullAs) {
    const absent = new NoClusterError()
    if (absent.code !== route.nullAs) throw new Error(`assertion failed: route ${route.path} answers null as ${route.nullAs}, which the app cannot raise`)
    throw absent
  }
  const bytes = (route.encodeAnswer as (a: unknown) => Uint8Array)(answer)
  return c.body(bytes as Uint8Array<ArrayBuffer>, 200, { 'content-type': route.answer === 'binary' ? BINARY : JSON_TYPE })
}

/** The storage node's HTTP face: the routes of the node protocol's table (ROUTES in @kvorum/core), plus /metrics. */
export function createApp({ engine, logger, token }: AppOptions) {
  const app = new Hono()
  const metrics = nodeMetrics(engine)

  app.use(async (c, next) => {
    const started = performance.now()
    await next()
    const route = c.req.routePath
    metrics.requests.inc({ route, status: String(c.res.status) })
    metrics.latency.observe({ route }, (performance.now() - started) / 1000)
    const cluster = await engine.getCluster()
    c.res.headers.set('x-kvorum-cluster-version', String(cluster?.version ?? 0))
  })
  app.use(async (c, next) => {
    if (token && c.req.path !== '/health' && c.req.header('authorization') !== `Bearer ${token}`) throw new UnauthorizedError()
    await next()
  })
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

  app.get('/metrics', async (c) => c.text(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType }))
  for (const route of ROUTE_LIST) {
    app.on(route.method, route.path, async (c) => {
      const res = await serve(c, route, engine)
      if (route.op === 'putCluster') logger.info({ version: (await engine.getCluster())?.version }, 'cluster definition installed')
      return res
    })
  }

  app.notFound((c) => {
    const { status, body: err } = errorResponse(new RouteNotFoundError(c.req.method, c.req.path))
    return c.json(err, status as 404)
  })
  app.onError((e, c) => {
    const { status, body: err } = errorResponse(e)
    if (status >= 500 && err.code === 'KV_INTERNAL') logger.error({ err: e, path: c.req.path }, 'request failed')
    else logger.debug({ code: err.code, path: c.req.path }, 'request refused')
    return c.json(err, status as 400)
  })
  return app
}
