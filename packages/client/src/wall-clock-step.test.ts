import { afterEach, describe, expect, it } from 'vitest'
import { type NodeProtocol, type Time, realTime } from '@kvorum/core'
import { type MemoryCluster, memoryCluster, wrapBatches } from '../../../test/support/memory-cluster.js'
import { MemoryTransport, detectorOf, handoffWorker } from './testing.js'

/**
 * An NTP step sets a client's wall clock back by minutes while calls are in
 * flight. Deadlines, backoffs and rate limits run on the monotonic clock, so
 * the step changes nothing about when a call ends; only the times stamped
 * into versions follow the wall clock.
 */

let cluster: MemoryCluster | undefined
const release: (() => void)[] = []
afterEach(async () => {
  for (const go of release.splice(0)) go()
  await cluster?.close()
  cluster = undefined
})

const STEP_MS = 5 * 60_000
const TIMEOUT_MS = 400
/** How long a test waits for a call before calling it stuck (the bug waited out the whole step). */
const STUCK_MS = 5000
/** Late timers on a loaded machine. */
const MARGIN_MS = 400

/** The real clocks, with a wall clock the test can set back. */
function steppedTime(): { time: Time; stepBack: (ms: number) => void } {
  let behindMs = 0
  return { time: { ...realTime, now: () => Date.now() - behindMs }, stepBack: (ms) => (behindMs += ms) }
}

/** `work`'s outcome (its value, or its error's code), or 'stuck' when it has not settled within STUCK_MS. */
async function settleWithin(work: Promise<unknown>): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined
  const stuck = new Promise((resolve) => (timer = setTimeout(() => resolve('stuck'), STUCK_MS)))
  try {
    return await Promise.race([
      work.then(
        (v) => v,
        (e: { code?: string }) => e.code ?? e,
      ),
      stuck,
    ])
  } finally {
    clearTimeout(timer)
  }
}

describe('a wall clock stepping back minutes mid-call', () => {
  it('an update whose clock steps back between its read and its write ends at its deadline', async () => {
    cluster = await memoryCluster()
    const { time, stepBack } = steppedTime()
    let holding = false
    // Store batches carrying merges (the write spreading to the replicas) are held until the test ends.
    // The in-memory transport does not time requests out: only the call's deadline ends the wait.
    const held = wrapBatches(cluster.engines as Map<string, NodeProtocol>, async (_id, _store, batch, run) => {
      if (holding && batch.merges.length > 0) await new Promise<void>((go) => release.push(go))
      return run()
    })
    const transport = new MemoryTransport(held)
    const { kv } = await cluster.client({ transport, time, timeoutMs: TIMEOUT_MS, readSpeculateMs: 10_000 })
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('k', 'v', { w: 3 })
    const started = performance.now()
    const run = s.update(
      'k',
      () => {
        stepBack(STEP_MS)
        holding = true
        return 'w'
      },
      { w: 3 },
    )
    // On the wall clock the write's deadline was five minutes away: it waited for the held replicas.
    expect(await settleWithin(run)).toBe('KV_TIMEOUT')
    expect(performance.now() - started).toBeLessThan(TIMEOUT_MS + MARGIN_MS)
  })

  it('a retry policy is told the time left on the monotonic clock, and the call ends at its deadline', async () => {
    cluster = await memoryCluster()
    const { time, stepBack } = steppedTime()
    const told: number[] = []
    const { kv, transport } = await cluster.client({
      time,
      timeoutMs: TIMEOUT_MS,
      // Wait 50 ms while the deadline allows it; the clock steps back during the first failure.
      retry: ({ remainingMs }) => {
        told.push(remainingMs)
        if (told.length === 1) stepBack(STEP_MS)
        return 50
      },
    })
    for (const n of cluster.nodes) transport.setReachable(n.id, false)
    const started = performance.now()
    expect(await settleWithin(kv.store<string>('default', { codec: 'utf8' }).put('k', 'v'))).toBe('KV_QUORUM_NOT_MET')
    expect(performance.now() - started).toBeLessThan(TIMEOUT_MS + MARGIN_MS)
    // Never more than the call's timeout: a remainder of minutes would keep a policy retrying.
    expect(told.length).toBeGreaterThan(1)
    for (const ms of told) expect(ms).toBeLessThanOrEqual(TIMEOUT_MS)
  })

  it('hint delivery after the clock stepped back is not held back by its rate limit', async () => {
    const c = await memoryCluster()
    cluster = c
    const { time, stepBack } = steppedTime()
    const { kv, transport } = await c.client({ time })
    const s = kv.store<string>('default', { codec: 'utf8' })
    // n3 misses the writes; their coordinators keep hints for it.
    transport.setReachable('n3', false)
    for (let i = 0; i < 20; i++) await s.put(`k${i}`, 'v', { w: 2 })
    const held = async () => {
      let n = 0
      for (const id of ['n1', 'n2']) for (const t of await c.replica(id).hintTargets({ timeoutMs: 1000 })) n += t.count
      return n
    }
    for (let tries = 0; tries < 100 && (await held()) < 20; tries++) await new Promise((r) => setTimeout(r, 10))
    expect(await held()).toBe(20)
    transport.setReachable('n3', true)
    detectorOf(kv).success('n3')
    const worker = handoffWorker(kv)
    stepBack(STEP_MS)
    // Its token bucket counted the step as minutes of debt and slept them off before delivering.
    const started = performance.now()
    const swept = await settleWithin(worker.sweep())
    expect(swept).toEqual({ delivered: 20, failed: 0, remaining: 0 })
    expect(performance.now() - started).toBeLessThan(2000)
  })
})
