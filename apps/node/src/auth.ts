import type { Context, MiddlewareHandler } from 'hono'
import type { Logger } from 'pino'
import { type ClusterDef, type Route, UnauthorizedError, UnsignedDefinitionError, signedByAdmin } from '@kvorum/core'
import type { Credentials, GrantedRole } from './credentials.js'

/** Authentication failures logged per second; the ones past it are counted into the next line that is logged. */
const MAX_AUTH_WARNINGS_PER_SECOND = 10

/** Where a request came from, as the socket says (in-process requests have none). */
function remoteOf(c: Context): string {
  const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string; remotePort?: number } } } | undefined)?.incoming
  const socket = incoming?.socket
  return socket?.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort ?? 0}` : 'in-process'
}

/** A bounded warn line per refusal, with the remote address and why, never what was presented; answers the error to throw. */
function refusals(logger: Logger, requestId: (c: Context) => string): (c: Context, reason: string) => UnauthorizedError {
  let windowStartMs = 0
  let logged = 0
  let suppressed = 0
  return (c, reason) => {
    const nowMs = performance.now()
    if (nowMs - windowStartMs >= 1000) {
      windowStartMs = nowMs
      logged = 0
    }
    if (logged >= MAX_AUTH_WARNINGS_PER_SECOND) suppressed++
    else {
      logged++
      const fields = { reqId: requestId(c), method: c.req.method, path: c.req.path, remote: remoteOf(c), reason }
      logger.warn(suppressed > 0 ? { ...fields, suppressed } : fields, 'authentication failed')
      suppressed = 0
    }
    return new UnauthorizedError()
  }
}

/** The roles a request's bearer token grants; null when it carries none. */
function presentedRoles(c: Context, credentials: Credentials): ReadonlySet<GrantedRole> | null {
  const header = c.req.header('authorization')
  if (header === undefined || !header.startsWith('Bearer ')) return null
  return credentials.rolesOf(header.slice('Bearer '.length))
}

/** The checks of one app: `authenticate` for every request, `authorize` per route. */
export interface Guard {
  /** Every request but /health: a guarded node refuses one with no valid credential, whatever the route (unknown ones too). */
  readonly authenticate: MiddlewareHandler
  /** A route's role: its credential, or (a signed-relay route) a data credential carrying an admin-signed definition. */
  authorize(role: GrantedRole, route?: Route): MiddlewareHandler
}

/**
 * Authentication by role. A refusal is 401 KV_UNAUTHORIZED (or 403
 * KV_UNSIGNED_DEFINITION for an unsigned definition from a data credential)
 * and a bounded warn line.
 */
export function guard(credentials: Credentials, logger: Logger, requestId: (c: Context) => string): Guard {
  const refuse = refusals(logger, requestId)
  const ROLES_KEY = 'kvorumRoles'
  const rolesOf = (c: Context): ReadonlySet<GrantedRole> | null => c.get(ROLES_KEY as never) as ReadonlySet<GrantedRole> | null
  return {
    authenticate: async (c, next) => {
      if (c.req.path === '/health') return next()
      const roles = presentedRoles(c, credentials)
      c.set(ROLES_KEY as never, roles as never)
      if (!credentials.isOpen('data') || !credentials.isOpen('admin')) {
        if (roles === null) throw refuse(c, 'no bearer token')
        if (roles.size === 0) throw refuse(c, 'wrong token')
      }
      return next()
    },
    authorize: (role, route) => async (c, next) => {
      if (credentials.isOpen(role)) return next()
      const roles = rolesOf(c)
      if (roles === null || roles === undefined) throw refuse(c, 'no bearer token')
      if (roles.size === 0) throw refuse(c, 'wrong token')
      if (roles.has(role)) return next()
      if (route?.signedRelay && roles.has('data')) {
        // The body is read once: Hono keeps it for the handler.
        const [def] = route.decodeRequest({ params: c.req.param(), query: c.req.query(), body: new Uint8Array(await c.req.arrayBuffer()) }) as [ClusterDef]
        if (signedByAdmin(def, credentials.adminSecrets())) return next()
        throw new UnsignedDefinitionError(def.signature === undefined ? 'the definition is not signed' : 'the signature does not match an admin secret')
      }
      throw refuse(c, `a ${[...roles].join('+')} credential on a ${role} route`)
    },
  }
}
