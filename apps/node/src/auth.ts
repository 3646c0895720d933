import { createHash, timingSafeEqual } from 'node:crypto'
import type { Context, MiddlewareHandler } from 'hono'
import type { Logger } from 'pino'
import { UnauthorizedError } from '@kvorum/core'

/** The tokens a node checks; either may be absent. */
export interface Tokens {
  /** Every route but /health needs it. */
  readonly token?: string | undefined
  /** Accepted on GET /metrics only. */
  readonly metricsToken?: string | undefined
}

/** Authentication failures logged per second; the ones past it are counted into the next line that is logged. */
const MAX_AUTH_WARNINGS_PER_SECOND = 10

/**
 * Tokens are compared as SHA-256 digests: digests have one length, so the
 * time a wrong guess takes tells neither how much of it matched nor how long
 * the token is. It costs ~3 µs per request (of ~300 µs a node spends on one);
 * a length check before timingSafeEqual would be cheaper but tell the length.
 */
const digest = (text: string): Buffer => createHash('sha256').update(text).digest()

/** Equal digests, compared in constant time. */
const same = (a: Buffer, b: Buffer | null): boolean => b !== null && timingSafeEqual(a, b)

/** Where a request came from, as the socket says (in-process requests have none). */
function remoteOf(c: Context): string {
  const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string; remotePort?: number } } } | undefined)?.incoming
  const socket = incoming?.socket
  return socket?.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort ?? 0}` : 'in-process'
}

/**
 * The token check: /health is open; /metrics takes the data token or the
 * metrics token (open when neither is set); every other route takes the data
 * token only (open when it is not set). A refusal is 401 KV_UNAUTHORIZED and
 * a warn line with the remote address and why, never what was presented.
 */
export function authentication({ token, metricsToken }: Tokens, logger: Logger, requestId: (c: Context) => string): MiddlewareHandler {
  const data = token ? digest(token) : null
  const scrape = metricsToken ? digest(metricsToken) : null
  let windowStartMs = 0
  let logged = 0
  let suppressed = 0
  const warn = (c: Context, reason: string) => {
    const nowMs = performance.now()
    if (nowMs - windowStartMs >= 1000) {
      windowStartMs = nowMs
      logged = 0
    }
    if (logged >= MAX_AUTH_WARNINGS_PER_SECOND) {
      suppressed++
      return
    }
    logged++
    const fields = { reqId: requestId(c), method: c.req.method, path: c.req.path, remote: remoteOf(c), reason }
    logger.warn(suppressed > 0 ? { ...fields, suppressed } : fields, 'authentication failed')
    suppressed = 0
  }
  return async (c, next) => {
    const path = c.req.path
    if (path === '/health') return next()
    const metrics = path === '/metrics'
    if (metrics ? !data && !scrape : !data) return next()
    const header = c.req.header('authorization')
    if (header === undefined || !header.startsWith('Bearer ')) {
      warn(c, 'no bearer token')
      throw new UnauthorizedError()
    }
    const presented = digest(header.slice('Bearer '.length))
    // Both comparisons always run, so the time taken does not tell which token matched.
    const isData = same(presented, data)
    const isScrape = same(presented, scrape)
    if (isData || (metrics && isScrape)) return next()
    warn(c, isScrape ? 'the metrics token is accepted on /metrics only' : 'wrong token')
    throw new UnauthorizedError()
  }
}
