#!/usr/bin/env node
import { accessSync, constants, mkdirSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { RequestError, getRequestListener } from '@hono/node-server'
import type { Logger } from 'pino'
import { DataDirError, InternalError, InvalidInputError, KvorumError, ListenFailedError } from '@kvorum/core'
import { StorageEngine } from '@kvorum/storage'
import { createApp } from './app.js'
import { errorResponse } from './errors.js'
import { Credentials } from './credentials.js'
import { afterLogWritten, nodeLogger } from './logger.js'
import { type NodeOptions, type TlsFiles, USAGE, parseCommand, reloadSecrets, reloadTls } from './options.js'
import { type NodeServer, nodeServer, replaceCertificate } from './server.js'
import { VERSION } from './version.js'

/** How long a stop waits for in-flight requests before it closes the database anyway, ms. */
const STOP_DEADLINE_MS = 5000
/** Longest wait at exit for the log's last lines to reach stdout, ms. */
const LOG_DRAIN_MS = 500

/**
 * Stop before serving: one line on stderr with the error's stable code (no
 * stack), exit code 2 for a wrong command line and 1 for anything else.
 */
function refuseToStart(e: unknown): never {
  const err = e instanceof KvorumError ? e : new InternalError(e instanceof Error ? e.message : String(e))
  const hint = err.code === 'KV_USAGE' ? ' (kvorum-node --help lists every flag)' : ''
  process.stderr.write(`kvorum-node: ${err.code}: ${err.message.replaceAll('\n', ' ')}${hint}\n`)
  process.exit(err.code === 'KV_USAGE' ? 2 : 1)
}

/** The data directory, created if missing, and the engine over its database; any failure is KV_DATA_DIR (or KV_DATA_FORMAT). */
function openEngine(opts: NodeOptions, logger: Logger): StorageEngine {
  const file = join(opts.data, 'kvorum.db')
  try {
    mkdirSync(opts.data, { recursive: true })
    accessSync(opts.data, constants.W_OK)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    const why = code === 'EEXIST' || code === 'ENOTDIR' ? 'it, or a directory above it, is a file' : code === 'EACCES' ? 'permission denied' : code
    throw new DataDirError(`cannot use data directory ${opts.data}: ${why ?? (e as Error).message}`)
  }
  try {
    return new StorageEngine({
      path: file,
      nodeId: opts.id,
      ...(opts.zone ? { zone: opts.zone } : {}),
      durability: opts.durability,
      maxHintsPerTarget: opts.maxHints,
      maxHintAgeMs: opts.maxHintAgeS * 1000,
      ...(opts.maxDbMib === undefined ? {} : { maxDbBytes: opts.maxDbMib * 1024 * 1024 }),
      onDiskFull: (full) => diskFullChanged(logger, opts, full),
      onCorruptRow: (row) =>
        logger.error(
          row,
          'damaged row (checksum or decode failed): a checksum failure is refused with KV_DATA_CORRUPT until kvorum repair restores it from peers; a row that does not decode is kept, its writes refused',
        ),
      onDamagedHint: (hint) =>
        logger.error(
          hint,
          hint.dropped
            ? 'damaged hint (checksum failed): dropped, never delivered; kvorum repair brings the key to its target'
            : 'hint that does not decode (another build wrote it?): kept, never delivered',
        ),
      sqlite: { pageCacheMiB: opts.cacheMiB / 2, mmapMiB: opts.mmapMiB },
      cache: { maxBytes: (opts.cacheMiB / 2) * 1024 * 1024 },
    })
  } catch (e) {
    // A newer format says so with its own code; anything else (not SQLite, unreadable, read-only) is the directory's.
    if (e instanceof KvorumError) throw e
    throw new DataDirError(`cannot open ${file}: ${(e as Error).message}`)
  }
}

/** One line when the node turns unable to write for want of room, and one when it writes again. */
function diskFullChanged(logger: Logger, opts: NodeOptions, full: boolean): void {
  if (full)
    logger.error(
      { code: 'KV_DISK_FULL', data: opts.data, maxDbMib: opts.maxDbMib },
      'out of disk space: refusing writes with KV_DISK_FULL, still serving reads; free space on the disk or raise --max-db-mib (no restart needed)',
    )
  else logger.warn({ data: opts.data }, 'disk space is back: taking writes again')
}

/** What SQLite's page check at open found, when it found something or could not run. */
function logOpenCheck(logger: Logger, engine: StorageEngine): void {
  const check = engine.atOpen
  if (!check.ran) logger.warn({ why: check.skipped }, 'database not checked at open: run kvorum check --seeds URL to check it while the node serves')
  else if (check.problems.length > 0)
    logger.error(
      { problems: check.problems.slice(0, 10), reindexed: check.reindexed, remaining: check.remaining.slice(0, 10), ms: Math.round(check.ms) },
      check.remaining.length === 0
        ? 'the database was damaged in its indexes: rebuilt them from the tables (REINDEX); nothing is lost'
        : "the database is damaged in its tables: rows there read as missing or fail as KV_DATA_CORRUPT; kvorum repair restores what peers hold, or replace this node's data directory",
    )
}

/** Listen, or say in one sentence why not. */
function listen(server: NodeServer['listener'], opts: NodeOptions): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const failed = (e: NodeJS.ErrnoException) => {
      const why =
        e.code === 'EADDRINUSE'
          ? 'the port is in use (another kvorum-node?)'
          : e.code === 'EACCES'
            ? 'permission denied (ports below 1024 need privileges)'
            : e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN'
              ? '--host is not an address of this machine'
              : (e.code ?? e.message)
      reject(new ListenFailedError(`cannot listen on ${opts.host}:${opts.port}: ${why}`))
    }
    server.once('error', failed)
    server.listen(opts.port, opts.host, () => {
      server.off('error', failed)
      resolve(server.address() as AddressInfo)
    })
  })
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

/** Stop on SIGTERM/SIGINT: no new requests, in-flight ones finish (at most STOP_DEADLINE_MS), then the database closes. */
function stopOnSignals({ listener, requests: server }: NodeServer, engine: StorageEngine, logger: Logger): void {
  let stopping = false
  // Keep-alive clients would hold a stopping node's connections open until the deadline below:
  // requests taken while stopping close their connection, and one that goes idle is closed at once.
  server.prependListener('request', (_req, res) => {
    if (stopping) res.setHeader('connection', 'close')
    res.once('finish', () => {
      if (stopping) server.closeIdleConnections()
    })
  })
  // A log line must not keep the node up: the shutdown is under way before anything is written,
  // and a write that throws (stdout gone) is ignored.
  const log = (write: () => void) => {
    try {
      write()
    } catch {
      // nowhere to say it
    }
  }
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    setTimeout(() => {
      engine.close()
      process.exit(0)
    }, STOP_DEADLINE_MS).unref()
    // The listener counts every connection (with TLS, the HTTPS server only serves them): its close waits for all.
    if (listener !== server) server.close()
    listener.close(() => {
      engine.close()
      log(() => logger.info('stopped'))
      // The log drains in the background, for a moment at most: a slow reader loses the last lines.
      afterLogWritten(() => process.exit(0))
      setTimeout(() => process.exit(0), LOG_DRAIN_MS).unref()
    })
    // Idle keep-alive sockets would hold close() open; in-flight requests still finish.
    server.closeIdleConnections()
    log(() => logger.info({ signal }, 'stopping: no new requests, finishing in-flight writes'))
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

/**
 * SIGHUP: re-read the credentials, and the TLS certificate, key and client
 * CA, from the same flags, variables and files; a mistake in either keeps
 * what the node holds (and says so) and the other still reloads.
 */
function reloadOnHangup(credentials: Credentials, server: NodeServer, tls: TlsFiles | undefined, logger: Logger): void {
  let certificate = tls
  process.on('SIGHUP', () => {
    reloadCredentials(credentials, logger)
    if (!certificate) return
    try {
      const { files, served } = replaceCertificate(server, certificate, reloadTls(process.argv.slice(2), process.env))
      certificate = files
      logger.info({ subject: served.subject, validTo: served.validTo, fingerprint256: served.fingerprint256 }, 'TLS certificate reloaded')
    } catch (e) {
      logger.error(
        { code: e instanceof KvorumError ? e.code : undefined, err: (e as Error).message },
        'TLS certificate not reloaded: the node keeps serving the old one',
      )
    }
  })
}

function reloadCredentials(credentials: Credentials, logger: Logger): void {
  try {
    const secrets = reloadSecrets(process.argv.slice(2), process.env)
    credentials.replace(secrets)
    const counts = { all: secrets.all.length, data: secrets.data.length, admin: secrets.admin.length, metrics: secrets.metrics.length }
    logger.info({ secrets: counts }, 'credentials reloaded')
  } catch (e) {
    logger.error({ code: e instanceof KvorumError ? e.code : undefined, err: (e as Error).message }, 'credentials not reloaded: the old ones stay')
  }
}

async function main(): Promise<void> {
  let opts: NodeOptions
  try {
    const command = parseCommand(process.argv.slice(2), process.env)
    if ('help' in command) {
      process.stdout.write(`${USAGE}\n`)
      return
    }
    if ('version' in command) {
      process.stdout.write(`kvorum-node ${VERSION}\n`)
      return
    }
    opts = command.run
  } catch (e) {
    refuseToStart(e)
  }
  const logger = nodeLogger(opts.logLevel, opts.id)
  let engine: StorageEngine
  try {
    engine = openEngine(opts, logger)
  } catch (e) {
    refuseToStart(e)
  }
  const leaves = engine.leavesOpened
  if (leaves.rebuilt && leaves.keys > 0)
    logger.warn({ keys: leaves.keys, ms: Math.round(leaves.ms) }, 'not closed cleanly last time: Merkle leaves rebuilt from the stored keys')
  if (engine.quotaBytes > 0 && engine.databaseBytes >= engine.quotaBytes)
    logger.warn(
      { bytes: engine.databaseBytes, quotaBytes: engine.quotaBytes },
      'the database is already at its --max-db-mib quota: writes that add data will get KV_DISK_FULL',
    )
  logOpenCheck(logger, engine)
  const sizes = engine.sizesOpened
  if (sizes.counted && engine.storeSizes.size > 0)
    logger.info({ ms: Math.round(sizes.ms) }, 'keys and bytes per store counted from the table (no snapshot of a clean close)')
  const credentials = new Credentials(opts.secrets)
  const app = createApp({ engine, logger, credentials })
  const server = nodeServer(getRequestListener(app.fetch, { hostname: opts.host, errorHandler: (e) => unbuiltRequest(e, logger) }), opts.tls)
  let info: AddressInfo
  try {
    info = await listen(server.listener, opts)
  } catch (e) {
    // The database was opened: close it (its leaves snapshot too) before going.
    engine.close()
    refuseToStart(e)
  }
  const tls = opts.tls ? (opts.tls.clientCa ? 'mutual' : 'server') : 'off'
  logger.info({ port: info.port, host: opts.host, data: opts.data, durability: opts.durability, tls, incarnation: engine.incarnation }, 'kvorum-node listening')
  // One machine-readable line for whoever started us (tests, `kvorum dev`).
  if (process.send) process.send({ ready: true, port: info.port, incarnation: engine.incarnation })
  stopOnSignals(server, engine, logger)
  reloadOnHangup(credentials, server, opts.tls, logger)
}

void main()
