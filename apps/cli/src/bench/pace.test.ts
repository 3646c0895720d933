import { describe, expect, it } from 'vitest'
import { MAX_OUTSTANDING, paced } from './pace.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function busy(ms: number): void {
  const until = performance.now() + ms
  while (performance.now() < until) {
    // a stall: the process does nothing else meanwhile
  }
}

describe('paced', () => {
  it('closed loop: as many workers as the concurrency, each waiting for its last operation', async () => {
    const workers = new Set<number>()
    let inFlight = 0
    let most = 0
    const stats = await paced({ concurrency: 4 }, performance.now() + 200, async (_t0, w) => {
      workers.add(w)
      most = Math.max(most, ++inFlight)
      await sleep(20)
      inFlight--
    })
    expect([...workers].sort()).toEqual([0, 1, 2, 3])
    expect(most).toBe(4)
    // 4 workers, 200 ms of 20 ms operations: about 40 (fewer on a loaded machine), never more.
    expect(stats.issued).toBeGreaterThanOrEqual(4)
    expect(stats.issued).toBeLessThan(60)
  })

  it('open loop: keeps the schedule while operations are slow, and hands out worker ids no operation in flight holds', async () => {
    const held = new Set<number>()
    let clash = false
    const started = performance.now()
    const stats = await paced({ concurrency: 1, rate: 500 }, started + 400, async (_t0, w) => {
      if (held.has(w)) clash = true
      held.add(w)
      await sleep(50)
      held.delete(w)
    })
    // 500/s for 0.4 s is 200 operations, though each takes 50 ms and the concurrency is 1.
    expect(stats.issued).toBeGreaterThan(170)
    expect(stats.issued).toBeLessThanOrEqual(200)
    expect(clash).toBe(false)
  })

  it('open loop: latency counts from the intended start, so a stall shows in every operation it delayed', async () => {
    const latencies: number[] = []
    let first = true
    await paced({ concurrency: 1, rate: 1000 }, performance.now() + 400, async (t0) => {
      if (first) {
        first = false
        busy(100)
      }
      await sleep(0)
      latencies.push(performance.now() - t0)
    })
    // The 100 ms stall delayed about 100 scheduled operations; each carries its wait. A closed loop
    // at concurrency 1 would have recorded one slow operation and simply issued fewer.
    const slow = latencies.filter((ms) => ms > 20).length
    expect(slow).toBeGreaterThan(50)
    expect(latencies.length).toBeGreaterThan(300)
  })

  it('open loop: at most MAX_OUTSTANDING in flight; the rest start late', async () => {
    let inFlight = 0
    let most = 0
    const release: (() => void)[] = []
    const done = paced({ concurrency: 1, rate: 100_000 }, performance.now() + 100, async () => {
      most = Math.max(most, ++inFlight)
      await new Promise<void>((r) => release.push(r))
      inFlight--
    })
    await sleep(150)
    for (const r of release.splice(0)) r()
    // Operations let go start the next ones due; release those too until the run ends.
    for (let i = 0; i < 20 && inFlight > 0; i++) {
      await sleep(5)
      for (const r of release.splice(0)) r()
    }
    const stats = await done
    expect(most).toBe(MAX_OUTSTANDING)
    expect(stats.late).toBeGreaterThan(0)
  })
})
