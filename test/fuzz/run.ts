import { type Target, auth, startTarget } from './target.js'
import { Client, NoAnswerError } from './http.js'
import type { Pool } from './gen.js'
import { nextRequest } from './mix.js'
import { checkHealth, snapshot, unexplained } from './model.js'
import { judge } from './oracle.js'
import { Random } from '../support/random.js'
import type { FuzzRequest } from './request.js'
import { oversize, slowloris } from './stress.js'

export interface FuzzOptions {
  /** Fuzzed requests to send (stress events not counted). */
  readonly requests: number
  readonly seed: number
  /** Requests sent together before the data is checked. Default 32. */
  readonly batchSize?: number
  /** Connections in use at once. Default 8. */
  readonly concurrency?: number
  /** Deadline of one request, ms. Default 10,000. */
  readonly timeoutMs?: number
  /** Bodies over the 64 MiB limit to send, alternating Content-Length and chunked. Default 2. */
  readonly oversized?: number
  /** Slowloris rounds. Default 1. */
  readonly slowlorisRounds?: number
  /** Stop after this many violations. Default 20. */
  readonly maxViolations?: number
  /** Called about every `progressEvery` requests. */
  readonly onProgress?: (summary: Summary) => void
  readonly progressEvery?: number
}

export interface Violation {
  /** Index of the request in the seed's stream (-1 for checks between batches). */
  readonly index: number
  readonly request: string
  readonly problem: string
}

export interface Summary {
  readonly seed: number
  requests: number
  batches: number
  /** Batches whose data check ran (no request in them had an unknown effect). */
  checkedBatches: number
  readonly byStatus: Record<string, number>
  readonly byCode: Record<string, number>
  readonly byClass: Record<string, number>
  readonly violations: Violation[]
  elapsedMs: number
  /** The end of the node's log (warnings and errors), kept when there are violations. */
  nodeLog: string
}

/** A request in a line: enough to see what was sent. */
function describeRequest(req: FuzzRequest): string {
  const body = req.body ? ` body[${req.body.length}]=${Buffer.from(req.body.subarray(0, 48)).toString('hex')}${req.body.length > 48 ? '...' : ''}` : ''
  const headers = Object.entries(req.headers)
    .map(([k, v]) => `${k}: ${JSON.stringify(v).slice(0, 60)}`)
    .join('; ')
  return `${req.kind} ${req.method} ${JSON.stringify(req.path.slice(0, 200))} {${headers}}${body}`
}

function bump(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1
}

function classOf(kind: string): string {
  return /^[a-z-]+/.exec(kind)?.[0] ?? kind
}

/** The batch index before which each stress event runs, spread over the run. */
function stressPlan(batches: number, oversized: number, slow: number): Map<number, string[]> {
  const plan = new Map<number, string[]>()
  const at = (frac: number, what: string) => {
    const b = Math.min(batches - 1, Math.floor(batches * frac))
    plan.set(b, [...(plan.get(b) ?? []), what])
  }
  for (let i = 0; i < oversized; i++) at((i + 1) / (oversized + 1), i % 2 === 0 ? 'oversize-length' : 'oversize-chunked')
  for (let i = 0; i < slow; i++) at((i + 0.5) / slow, 'slowloris')
  return plan
}

/**
 * Fuzz one fresh node with the request stream of `seed`. Never throws for a
 * finding: every problem is a violation in the summary. The node is stopped
 * (by PID) and its data removed before this returns.
 */
export async function runFuzz(options: FuzzOptions): Promise<Summary> {
  const prng = new Random(options.seed)
  const target = await startTarget(prng)
  const client = new Client(target.proc.port, options.concurrency ?? 8, options.timeoutMs ?? 10_000)
  const summary: Summary = {
    seed: options.seed,
    requests: 0,
    batches: 0,
    checkedBatches: 0,
    byStatus: {},
    byCode: {},
    byClass: {},
    violations: [],
    elapsedMs: 0,
    nodeLog: '',
  }
  const started = performance.now()
  try {
    await fuzz(options, prng, target, client, summary)
  } finally {
    summary.elapsedMs = performance.now() - started
    client.close()
    await target.close()
    if (summary.violations.length > 0) summary.nodeLog = target.proc.output()
  }
  return summary
}

type Violate = (index: number, request: string, problem: string) => void

/**
 * Send one batch at once and judge every answer. Returns the keys accepted
 * requests wrote, per store, and whether any request's effect is unknown.
 */
async function sendBatch(client: Client, reqs: readonly FuzzRequest[], first: number, summary: Summary, violate: Violate) {
  const written = new Map<string, Uint8Array[]>()
  let unknown = false
  await Promise.all(
    reqs.map(async (req, i) => {
      bump(summary.byClass, classOf(req.kind))
      try {
        const res = await client.send(req)
        bump(summary.byStatus, String(res.status))
        const verdict = judge(req, res)
        if (verdict.code) bump(summary.byCode, verdict.code)
        else if (res.status >= 400) bump(summary.byCode, req.method === 'HEAD' ? '(HEAD: no body)' : '(bare: Node HTTP parser)')
        for (const p of verdict.problems) violate(first + i, describeRequest(req), p)
        if (verdict.written === null) unknown = true
        else for (const [store, keys] of verdict.written) written.set(store, [...(written.get(store) ?? []), ...keys])
      } catch (e) {
        if (!(e instanceof NoAnswerError)) throw e
        bump(summary.byStatus, e.reason)
        violate(first + i, describeRequest(req), `no answer (${e.reason}): ${e.message}`)
        unknown = true
      }
    }),
  )
  return { written, unknown }
}

/** Batches of requests, each followed by the health and data checks; stress events before planned batches. */
async function fuzz(options: FuzzOptions, prng: Random, target: Target, client: Client, summary: Summary): Promise<void> {
  const pool: Pool = {
    prng,
    stores: target.stores,
    seededKeys: target.seededKeys,
    actors: [target.incarnation, target.incarnation, 'a', 'b', 'seed-actor', 'zz', '0', 'constructor'],
  }
  const size = options.batchSize ?? 32
  const batches = Math.ceil(options.requests / size)
  const plan = stressPlan(batches, options.oversized ?? 2, options.slowlorisRounds ?? 1)
  const maxViolations = options.maxViolations ?? 20
  const violate: Violate = (index, request, problem) => {
    if (summary.violations.length < maxViolations) summary.violations.push({ index, request, problem })
  }
  let exited = false
  void target.proc.exited.then(() => (exited = true))
  let before = await snapshot(client, target)
  for (let b = 0; b < batches && summary.violations.length < maxViolations; b++) {
    for (const event of plan.get(b) ?? []) {
      const problems =
        event === 'slowloris' ? await slowloris(target.proc.port, client, 16, 2000) : await oversize(target.proc.port, event === 'oversize-chunked')
      for (const p of problems) violate(-1, event, p)
      bump(summary.byClass, event)
    }
    const first = b * size
    const reqs = Array.from({ length: Math.min(size, options.requests - first) }, () => nextRequest(pool, target.def))
    const { written, unknown } = await sendBatch(client, reqs, first, summary, violate)
    summary.requests += reqs.length
    summary.batches++
    if (exited) {
      violate(-1, 'process', `the node exited:\n${target.proc.output().slice(-2000)}`)
      return
    }
    try {
      await checkHealth(client)
      const after = await snapshot(client, target)
      if (!unknown) {
        summary.checkedBatches++
        for (const p of unexplained(before, after, written, target)) violate(first, `batch of requests ${first}..${first + reqs.length - 1}`, p)
      }
      before = after
    } catch (e) {
      violate(-1, 'checks between batches', (e as Error).message)
      return
    }
    if (options.onProgress && summary.requests % (options.progressEvery ?? 5000) < size) options.onProgress(summary)
  }
  // Metrics are labelled by route pattern and status, so fuzzed paths must not grow them.
  const metrics = await client.send({ method: 'GET', path: '/metrics', headers: auth })
  if (metrics.status !== 200 || metrics.body.length > MAX_METRICS_BYTES)
    violate(-1, 'GET /metrics', `answered ${metrics.status} with ${metrics.body.length} bytes (limit ${MAX_METRICS_BYTES})`)
}

/** Size /metrics may reach after a run. */
const MAX_METRICS_BYTES = 256 * 1024
