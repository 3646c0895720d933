import { type RequestListener, type Server as HttpServer, createServer as createHttpServer } from 'node:http'
import { type Server as HttpsServer, createServer as createHttpsServer } from 'node:https'
import { type Server as NetServer, type Socket, createServer as createNetServer } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { TlsRequiredError, UnauthorizedError } from '@kvorum/core'
import { errorResponse } from './errors.js'
import type { TlsFiles } from './options.js'

/** The first byte of every TLS connection: a handshake record. */
const TLS_HANDSHAKE = 0x16
/** How long a new connection may stay silent before its first byte, ms (a TLS client speaks first, so does HTTP). */
const FIRST_BYTE_TIMEOUT_MS = 10_000

/** A node's server: what listens, and what serves requests (the same one without TLS). */
export interface NodeServer {
  /** Listens and counts every connection: its close() waits for all of them. */
  readonly listener: NetServer
  /** Serves the requests: request events, idle connections. */
  readonly requests: HttpServer | HttpsServer
}

/** The answer to a plain-HTTP request on the HTTPS port: the protocol's JSON error, then the connection closes. */
function refusePlain(socket: Socket): void {
  const { status, body } = errorResponse(new TlsRequiredError())
  const text = JSON.stringify(body)
  socket.end(
    `HTTP/1.1 ${status} Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
  )
}

/**
 * Requests on a connection whose client certificate did not verify are
 * answered 401 KV_UNAUTHORIZED saying why, and never served. The handshake
 * itself lets such a client in because a refusal there reaches a TLS 1.3
 * client only as "other side closed", which tells its operator nothing.
 */
function certifiedOnly(listener: RequestListener): RequestListener {
  return (req, res) => {
    const socket = req.socket as TLSSocket
    if (socket.authorized) return listener(req, res)
    const presented = Object.keys(socket.getPeerCertificate() ?? {}).length > 0
    const why = presented
      ? `the client certificate is not signed by this node's CA (${String(socket.authorizationError)})`
      : 'no client certificate was presented'
    const { status, body } = errorResponse(
      new UnauthorizedError(`TLS: ${why}: this node requires a client certificate its --tls-client-ca signed (pass --tls-cert and --tls-key)`),
    )
    res.writeHead(status, { 'content-type': 'application/json', connection: 'close' }).end(JSON.stringify(body))
  }
}

/**
 * HTTP, or HTTPS (with client certificates required when `tls.clientCa` is
 * set). A TLS port looks at each connection's first byte: a handshake goes to
 * the HTTPS server, anything else is a plain-HTTP caller, who gets one clear
 * 400 KV_TLS_REQUIRED instead of a connection reset it cannot explain.
 */
export function nodeServer(listener: RequestListener, tls: TlsFiles | undefined): NodeServer {
  if (!tls) {
    const server = createHttpServer(listener)
    return { listener: server, requests: server }
  }
  const https = createHttpsServer(
    { cert: tls.cert, key: tls.key, ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: false } : {}) },
    tls.clientCa ? certifiedOnly(listener) : listener,
  )
  const outer = createNetServer({ pauseOnConnect: true }, (socket) => {
    socket.setTimeout(FIRST_BYTE_TIMEOUT_MS, () => socket.destroy())
    socket.once('error', () => socket.destroy())
    socket.once('data', (first: Buffer) => {
      socket.pause()
      socket.setTimeout(0)
      // The TLS socket takes what was read back from the stream's buffer (Node's TLSSocket reads a socket's buffered data first).
      socket.unshift(first)
      if (first[0] === TLS_HANDSHAKE) https.emit('connection', socket)
      else refusePlain(socket)
    })
    socket.resume()
  })
  return { listener: outer, requests: https }
}
