import { type RequestListener, type Server as HttpServer, createServer as createHttpServer } from 'node:http'
import { type Server as HttpsServer, type ServerOptions as HttpsOptions, createServer as createHttpsServer } from 'node:https'
import { type Server as NetServer, type Socket, createServer as createNetServer } from 'node:net'
import { X509Certificate } from 'node:crypto'
import type { TLSSocket } from 'node:tls'
import { TlsRequiredError, UnauthorizedError, UsageError } from '@kvorum/core'
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

/** What the certificate files make: the node's certificate and key, and the CA its clients' certificates must chain to. */
function secureContext(tls: TlsFiles): Pick<HttpsOptions, 'cert' | 'key' | 'ca'> {
  return { cert: tls.cert, key: tls.key, ...(tls.clientCa ? { ca: tls.clientCa } : {}) }
}

/**
 * Present `next` to every new connection from now on (open ones keep the
 * certificate they shook hands with): a certificate rotation without a
 * restart. Throws, changing nothing, when the files make no context (bad
 * PEM, a key that is not the certificate's) or would turn TLS or client
 * certificates on or off, which only a restart does. Returns the files now
 * served and their (first) certificate, for the log.
 */
export function replaceCertificate(server: NodeServer, was: TlsFiles, next: TlsFiles | undefined): { files: TlsFiles; served: X509Certificate } {
  if (!next) throw new UsageError('TLS was on at start and the settings turn it off: that needs a restart')
  if (!was.clientCa !== !next.clientCa)
    throw new UsageError(`client certificates were ${was.clientCa ? '' : 'not '}required at start: adding or removing --tls-client-ca needs a restart`)
  try {
    const served = new X509Certificate(next.cert)
    ;(server.requests as HttpsServer).setSecureContext(secureContext(next))
    return { files: next, served }
  } catch (e) {
    throw new UsageError(`the TLS certificate, key and client CA files do not go together (${(e as Error).message})`)
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
    { ...secureContext(tls), ...(tls.clientCa ? { requestCert: true, rejectUnauthorized: false } : {}) },
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
