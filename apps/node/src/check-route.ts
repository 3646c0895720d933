import type { Env, Hono, MiddlewareHandler } from 'hono'
import type { Logger } from 'pino'
import { InvalidInputError } from '@kvorum/core'
import type { StorageEngine } from '@kvorum/storage'

/** The path of the on-demand check. Not part of the node protocol (clients never call it): `kvorum check` does. */
export const CHECK_PATH = '/v1/check'

/** `?full=1` (or `true`) asks for integrity_check instead of quick_check. */
function full(text: string | undefined): boolean {
  if (text === undefined || text === '0' || text === 'false') return false
  if (text === '' || text === '1' || text === 'true') return true
  throw new InvalidInputError(`full must be 1, true, 0 or false, got ${JSON.stringify(text)}`)
}

/**
 * GET /v1/check: the engine's on-demand check (SQLite's page check, then
 * every row's checksum, decode and digest), answered as JSON and logged
 * (a warning naming the damage when there is any). `authorize` is the
 * admin role's guard: a check drops damaged rows, and reads the whole file.
 */
export function serveCheck<E extends Env>(app: Hono<E>, engine: StorageEngine, logger: Logger, authorize: MiddlewareHandler): void {
  app.get(CHECK_PATH, authorize, async (c) => {
    const report = await engine.check({ full: full(c.req.query('full')) })
    const damaged = report.pages.problems.length + report.corruptTotal
    const summary = { kind: report.pages.kind, rowsChecked: report.rowsChecked, pageProblems: report.pages.problems.length, corruptRows: report.corruptTotal }
    if (damaged > 0) logger.warn({ ...summary, problems: report.pages.problems.slice(0, 10) }, 'check found damage: kvorum repair restores the rows from peers')
    else logger.info({ ...summary, ms: Math.round(report.ms) }, 'check found no damage')
    return c.json(report)
  })
}
