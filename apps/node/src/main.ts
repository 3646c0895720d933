#!/usr/bin/env node
import { mkdirSync } from 'node:fs'
import { type Server, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { RequestError, getRequestListener } from '@hono/node-server'
import { type Logger, pino } from 'pino'
import { InvalidInputError } from '@kvorum/core'
import { StorageEngine } from '@kvorum/storage'
import { createApp } from './app.js'
import { errorResponse } from './errors.js'

const USAGE = `kvorum-node: a Kvorum storage node

  --port N            port to listen on (default 7070)
  --host H            address to bind (default 127.0.0.1)
  --data DIR          directory of the SQLite database (default ./data/node-<port>)
  --id ID             node id in the cluster definition (default node-<port>)
  --zone Z            failure domain this node is in, told in /health; 'kvorum cluster rebalance --add' takes it from there
  --durability MODE   normal (default: survives a process crash) or full (fsync every group commit)
  --token T           require "Authorization: Bearer T" on every request but /health
  --log-level L       pino level (default info)
  --max-hints N       hinted keys kept per target node before new hints are refused (default 100000)
  --max-hint-age-s S  hints older than this are dropped and left to anti-entropy (default 604800, 7 days)`

function options() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '7070' },
      host: { type: 'string', default: '127.0.0.1' },
      data: { type: 'string' },
      id: { type: 'string' },
      zone: { type: 'string' },
      durability: { type: 'string', default: 'normal' },
      token: { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      'max-hints': { type: 'string', default: '100000' },
      'max-hint-age-s': { type: 'string', default: '604800' },
      help: { type: 'boolean', default: false },
    },
  })
  if (values.help) {
    console.log(USAGE)
    process.exit(0)
  }
  const port = Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0..65535, got ${values.port}`)
  if (values.durability !== 'normal' && values.durability !== 'full') throw new Error(`--durability must be normal or full, got ${values.durability}`)
  const maxHints = Number(values['max-hints'])
  if (!Number.isInteger(maxHints) || maxHints < 0 || maxHints > 100_000_000) throw new Error(`--max-hints must be 0..100000000, got ${values['max-hints']}`)
  const maxHintAgeS = Number(values['max-hint-age-s'])
  if (!Number.isInteger(maxHintAgeS) || maxHintAgeS < 1)
    throw new Error(`--max-hint-age-s must be a positive number of seconds, got ${values['max-hint-age-s']}`)
  if (values.zone !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(values.zone)) throw new Error(`--zone must be 1..64 of A-Z a-z 0-9 _ . -, got ${values.zone}`)
  return { ...values, port, maxHints, maxHintAgeS, durability: values.durability as 'normal' | 'full' }
}

/**
 * The answer to a request the HTTP adapter could not turn into a Request (a
 * backslash in the path, a malformed Host header): the adapter's own answer is
 * a bare 400, so refuse it in the protocol's JSON like any other bad input.
 */
function unbuiltRequest(e: unknown, logger: Logger): Response {
  if (!(e instanceof RequestError)) logger.error({ err: e }, 'request failed')
  const { status, body } = errorResponse(e instanceof RequestError ? new InvalidInputError(`malformed request: ${e.message}`) : e)
  return Response.json(body, { status })
}

function main(): void {
  let opts: ReturnType<typeof options>
  try {
    opts = options()
  } catch (e) {
    console.error(`kvorum-node: ${(e as Error).message}\n\n${USAGE}`)
    process.exit(2)
  }
  const logger = pino({ level: opts['log-level'], base: { node: opts.id ?? `node-${opts.port}` } })
  const dir = opts.data ?? join('data', `node-${opts.port}`)
  mkdirSync(dir, { recursive: true })
  let engine: StorageEngine
  try {
    engine = new StorageEngine({
      path: join(dir, 'kvorum.db'),
      nodeId: opts.id ?? `node-${opts.port}`,
      ...(opts.zone ? { zone: opts.zone } : {}),
      durability: opts.durability,
      maxHintsPerTarget: opts.maxHints,
      maxHintAgeMs: opts.maxHintAgeS * 1000,
    })
  } catch (e) {
    // A database this build cannot open (a newer format, a file that is not SQLite): say which and stop.
    console.error(`kvorum-node: cannot open ${join(dir, 'kvorum.db')}: ${(e as Error).message}`)
    process.exit(1)
  }
  const leaves = engine.leavesOpened
  if (leaves.rebuilt && leaves.keys > 0)
    logger.warn({ keys: leaves.keys, ms: Math.round(leaves.ms) }, 'not closed cleanly last time: Merkle leaves rebuilt from the stored keys')
  const app = createApp(opts.token ? { engine, logger, token: opts.token } : { engine, logger })
  const server = createServer(getRequestListener(app.fetch, { hostname: opts.host, errorHandler: (e) => unbuiltRequest(e, logger) }))
  server.listen(opts.port, opts.host, () => {
    const info = server.address() as AddressInfo
    logger.info({ port: info.port, host: opts.host, data: dir, durability: opts.durability, incarnation: engine.incarnation }, 'kvorum-node listening')
    // One machine-readable line for whoever started us (tests, `kvorum dev`).
    if (process.send) process.send({ ready: true, port: info.port, incarnation: engine.incarnation })
  })
  let stopping = false
  // Keep-alive clients would hold a stopping node's connections open until the 5 s deadline below:
  // requests taken while stopping close their connection, and one that goes idle is closed at once.
  const http: Server = server
  http.prependListener('request', (_req, res) => {
    if (stopping) res.setHeader('connection', 'close')
    res.once('finish', () => {
      if (stopping) http.closeIdleConnections()
    })
  })
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    logger.info({ signal }, 'stopping: no new requests, finishing in-flight writes')
    server.close(() => {
      engine.close()
      logger.info('stopped')
      process.exit(0)
    })
    // Idle keep-alive sockets would hold close() open; in-flight requests still finish.
    if ('closeIdleConnections' in server) server.closeIdleConnections()
    setTimeout(() => {
      engine.close()
      process.exit(0)
    }, 5000).unref()
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

main()
