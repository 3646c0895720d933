import type { WireResponse } from './http.js'
import { type FuzzRequest, STABLE_CODES } from './request.js'

/** The judgement of one answer: problems found, and the keys (of which store) the node may have changed. */
export interface Verdict {
  readonly problems: readonly string[]
  /** Store name to keys written; null when an accepted request's effect is unknown. */
  readonly written: ReadonlyMap<string, readonly Uint8Array[]> | null
  /** The stable code of a refusal. */
  readonly code?: string
}

const STABLE = new Set<string>(STABLE_CODES)

/** A refusal must be JSON `{code, message}` with a stable code (HEAD answers carry no body). */
function refusal(req: FuzzRequest, res: WireResponse): { problems: string[]; code?: string } {
  if (req.method === 'HEAD' || (req.expect.bare && res.body.length === 0)) return { problems: [] }
  const text = res.body.toString('utf8')
  let body: { code?: unknown; message?: unknown }
  try {
    body = JSON.parse(text) as typeof body
  } catch {
    return { problems: [`${res.status} answer is not JSON: ${JSON.stringify(text.slice(0, 120))} (content-type ${String(res.headers['content-type'])})`] }
  }
  const problems: string[] = []
  if (typeof body.code !== 'string' || typeof body.message !== 'string') problems.push(`${res.status} answer is not {code, message}: ${text.slice(0, 120)}`)
  const code = typeof body.code === 'string' ? body.code : undefined
  if (code !== undefined && !STABLE.has(code)) problems.push(`${res.status} answer has an unstable code ${code}: ${text.slice(0, 160)}`)
  if (code !== undefined && STABLE.has(code) && req.expect.codes.length > 0 && !req.expect.codes.includes(code as never)) {
    problems.push(`refused with ${code}, expected one of ${req.expect.codes.join(', ')}: ${text.slice(0, 160)}`)
  }
  return code === undefined ? { problems } : { problems, code }
}

/** What an accepted request wrote, and problems with its answer. */
function accepted(req: FuzzRequest, res: WireResponse): { problems: string[]; written: Map<string, readonly Uint8Array[]> | null } {
  const problems: string[] = []
  const body = new Uint8Array(res.body.buffer, res.body.byteOffset, res.body.byteLength)
  const fail = (what: string, e: unknown) => problems.push(`${what}: ${(e as Error).message}`)
  if (req.effect.kind === 'unknown') return { problems, written: req.method === 'GET' || req.method === 'HEAD' ? new Map() : null }
  if (req.effect.kind === 'none') {
    try {
      const problem = req.method === 'HEAD' ? undefined : req.check?.(body)
      if (problem) problems.push(problem)
    } catch (e) {
      fail('answer does not decode', e)
    }
    return { problems, written: new Map() }
  }
  const { route, store, decoded } = req.effect
  try {
    const answer = route.answer(body, decoded, req.body ?? new Uint8Array(0), store)
    if (answer.problem) problems.push(answer.problem)
    return { problems, written: new Map([[store.name, answer.written]]) }
  } catch (e) {
    fail('answer does not decode', e)
    // Assume the worst about what it wrote.
    return { problems, written: new Map([[store.name, decoded.writes]]) }
  }
}

/** Judge one answer against what the request expected. */
export function judge(req: FuzzRequest, res: WireResponse): Verdict {
  const { status } = res
  if (status >= 500) {
    return { problems: [`${status} server error: ${res.body.toString('utf8').slice(0, 200)}`], written: null }
  }
  if (status >= 200 && status < 300) {
    const { problems, written } = accepted(req, res)
    if (req.expect.accept === 'never') problems.push(`accepted (${status}) a request that must be refused`)
    return { problems, written }
  }
  if (status >= 400 && status < 500) {
    const { problems, code } = refusal(req, res)
    if (req.expect.accept === 'must') problems.push(`refused (${status} ${code ?? ''}) a valid request: ${res.body.toString('utf8').slice(0, 160)}`)
    return code === undefined ? { problems, written: new Map() } : { problems, written: new Map(), code }
  }
  return { problems: [`unexpected status ${status}`], written: null }
}
