import { Hono, type Context } from 'hono'
import type { Logger } from 'pino'
import {
  InvalidInputError, LIMITS, LengthRequiredError, NoClusterError, PayloadTooLargeError, UnauthorizedError, UnsupportedMediaTypeError, decodeAcks, decodeCoordinate, decodeHints,
  decodeKeySets, decodeKeys, decodeScanRequest, decodeTombstoneRequest, encodeAckResults, encodeCoordinateResults, encodeEncodedSetResults, encodeEncodedStoreBatchResults, decodeStoreBatch, encodeKeySets, encodeScanPage,
  encodeStoredHints, findStore, validateCluster,
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

function int(text: string | undefined, what: string): number {
  if (text === undefined || !/^\d{1,9}$/.test(text)) throw new InvalidInputError(`${what} must be a non-negative integer, got ${JSON.stringify(text)}`)
  return Number(text)
}

async function body(c: Context): Promise<Uint8Array> {
  const type = c.req.header('content-type') ?? ''
  if (!type.startsWith(BINARY)) throw new UnsupportedMediaTypeError(BINARY, type)
  return new Uint8Array(await c.req.arrayBuffer())
}

function binary(c: Context, bytes: Uint8Array): Response {
  return c.body(bytes as Uint8Array<ArrayBuffer>, 200, { 'content-type': BINARY })
}

/** The storage node's HTTP face: one route per operation of the node protocol. */
export function createApp({ engine, logger, token }: AppOptions) {
  const app = new Hono()
  const metrics = nodeMetrics(engine)
  const storeOf = async (c: Context) => {
    const cluster = await engine.getCluster()
    if (!cluster) throw new NoClusterError()
    return findStore(cluster, c.req.param('store') ?? '')
  }

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

  app.get('/health', async (c) => c.json({ status: 'ok', ...(await engine.health()) }))
  app.get('/metrics', async (c) => c.text(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType }))

  app.get('/v1/cluster', async (c) => {
    const cluster = await engine.getCluster()
    if (!cluster) throw new NoClusterError()
    return c.json(cluster)
  })
  app.put('/v1/cluster', async (c) => {
    let parsed: unknown
    try {
      parsed = await c.req.json()
    } catch {
      throw new InvalidInputError('cluster definition must be a JSON body')
    }
    await engine.putCluster(validateCluster(parsed))
    logger.info({ version: (parsed as { version: number }).version }, 'cluster definition installed')
    return c.json({ ok: true })
  })

  app.post('/v1/stores/:store/coordinate', async (c) => {
    const store = await storeOf(c)
    return binary(c, encodeCoordinateResults(await engine.coordinatePut(store.name, decodeCoordinate(await body(c), store.maxValueBytes))))
  })
  app.post('/v1/stores/:store/merge', async (c) => {
    const store = await storeOf(c)
    return binary(c, encodeAckResults(await engine.mergePut(store.name, decodeKeySets(await body(c), store.maxValueBytes, 1000))))
  })
  app.post('/v1/stores/:store/get', async (c) => {
    const store = await storeOf(c)
    return binary(c, encodeEncodedSetResults(await engine.getEncoded(store.name, decodeKeys(await body(c)))))
  })
  app.post('/v1/stores/:store/batch', async (c) => {
    const store = await storeOf(c)
    return binary(c, encodeEncodedStoreBatchResults(await engine.batchEncoded(store.name, decodeStoreBatch(await body(c), store.maxValueBytes, 1000))))
  })
  app.post('/v1/stores/:store/scan', async (c) => {
    const store = await storeOf(c)
    return binary(c, encodeScanPage(await engine.scan(store.name, decodeScanRequest(await body(c)))))
  })
  app.post('/v1/stores/:store/tombstones', async (c) => {
    const store = await storeOf(c)
    return binary(c, encodeKeySets(await engine.listTombstones(store.name, decodeTombstoneRequest(await body(c)))))
  })
  app.post('/v1/stores/:store/reap', async (c) => {
    const store = await storeOf(c)
    return c.json({ reaped: await engine.reap(store.name, decodeKeySets(await body(c), store.maxValueBytes, 1000)) })
  })
  app.get('/v1/stores/:store/merkle', async (c) => binary(c, await engine.merkleRoots((await storeOf(c)).name)))
  app.get('/v1/stores/:store/merkle/:partition', async (c) =>
    binary(c, await engine.merkleBranches((await storeOf(c)).name, int(c.req.param('partition'), 'partition'))))
  app.get('/v1/stores/:store/merkle/:partition/:branch', async (c) =>
    binary(c, await engine.merkleLeaves((await storeOf(c)).name, int(c.req.param('partition'), 'partition'), int(c.req.param('branch'), 'branch'))))

  app.get('/v1/hints', async (c) => c.json(await engine.hintTargets()))
  app.post('/v1/hints/:target', async (c) => binary(c, encodeAckResults(await engine.putHints(c.req.param('target'), decodeHints(await body(c))))))
  app.get('/v1/hints/:target', async (c) => {
    const limit = int(c.req.query('limit') ?? '1000', 'limit')
    const after = int(c.req.query('after') ?? '0', 'after')
    return binary(c, encodeStoredHints(await engine.listHints(c.req.param('target'), limit, after)))
  })
  app.post('/v1/hints/:target/ack', async (c) => c.json({ deleted: await engine.deleteHints(c.req.param('target'), decodeAcks(await body(c))) }))

  app.notFound((c) => c.json({ code: 'KV_NOT_FOUND', message: `no route ${c.req.method} ${c.req.path}` }, 404))
  app.onError((e, c) => {
    const { status, body: err } = errorResponse(e)
    if (status >= 500 && err.code === 'KV_INTERNAL') logger.error({ err: e, path: c.req.path }, 'request failed')
    else logger.debug({ code: err.code, path: c.req.path }, 'request refused')
    return c.json(err, status as 400)
  })
  return app
}
