import { afterEach, describe, expect, it } from 'vitest'
import { realTime } from '@kvorum/core'
import { type MemoryCluster, memoryCluster } from '../../../test/support/memory-cluster.js'
import { RateLimiter, THROTTLE } from './rate-limit.js'

let cluster: MemoryCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

describe('a repair pass counts what every worker did', () => {
  // Regression: `report.tombstonesReaped += await reapPartition(...)` read the count before the
  // await, so two partition workers overwrote each other's counts (a pass reaped keys and said 0).
  it('reaps tombstones in many partitions with two workers and reports every one', async () => {
    cluster = await memoryCluster({ stores: [{ name: 'default', tombstoneGraceMs: 0 }] })
    const { kv } = await cluster.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    const keys = Array.from({ length: 24 }, (_, i) => `k${i}`)
    for (const k of keys) await s.put(k, 'v', { w: 3 })
    for (const k of keys) await s.delete(k, { w: 3 })
    const report = await kv.repair({ concurrency: 2 })
    const left = await Promise.all(keys.map(async (k) => (await cluster?.engines.get('n1')?.get('default', [new TextEncoder().encode(k)]))?.[0]))
    expect(left.every((r) => r?.ok && r.value.length === 0)).toBe(true)
    expect(report.tombstonesReaped).toBe(keys.length)
  })
})

describe('repair backs off when a node answers slowly', () => {
  it('halves its rate for every slow merge, down to the floor, and reports the rate it ended at', async () => {
    cluster = await memoryCluster()
    const { kv, transport } = await cluster.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    // n3 misses every write: it has 300 keys to catch up on.
    transport.setReachable('n3', false)
    for (let i = 0; i < 300; i++) await s.put(`k${i}`, 'v')
    transport.setReachable('n3', true)
    const { kv: repairer, transport: slow } = await cluster.client()
    // n3's disk is slow: every merge it takes costs 120 ms.
    slow.intercept = async (node, op, _opts, call) => {
      if (node === 'n3' && op === 'mergePut') await new Promise((r) => setTimeout(r, 120))
      return call()
    }
    const report = await repairer.repair({ maxKeysPerSecond: 10_000 })
    expect(report.keysRepaired).toBe(300)
    expect(report.keysPerSecondLimit).toBe(10_000 * THROTTLE.floorShare)
  })

  it('keeps its rate while merges are quick', async () => {
    cluster = await memoryCluster()
    const { kv, transport } = await cluster.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    transport.setReachable('n3', false)
    for (let i = 0; i < 100; i++) await s.put(`k${i}`, 'v')
    transport.setReachable('n3', true)
    const report = await kv.repair({ maxKeysPerSecond: 10_000 })
    expect(report.keysRepaired).toBe(100)
    expect(report.keysPerSecondLimit).toBe(10_000)
  })
})

describe('RateLimiter.observe', () => {
  it('halves on a slow request, wins back a twentieth of the ceiling on a normal one, and stays within floor and ceiling', () => {
    const limiter = new RateLimiter(1000, realTime)
    limiter.observe(5, 256)
    expect(limiter.rate).toBe(1000)
    limiter.observe(30, 256)
    expect(limiter.rate).toBe(500)
    for (let i = 0; i < 20; i++) limiter.observe(500, 256)
    expect(limiter.rate).toBe(1000 * THROTTLE.floorShare)
    limiter.observe(6, 256)
    expect(limiter.rate).toBe(1000 * THROTTLE.floorShare + 50)
    for (let i = 0; i < 40; i++) limiter.observe(6, 256)
    expect(limiter.rate).toBe(1000)
    // A quick small request does not lower the bar for "slow": 30 ms for 256 keys stays normal.
    const fresh = new RateLimiter(1000, realTime)
    fresh.observe(1, 3)
    fresh.observe(30, 256)
    expect(fresh.rate).toBe(1000)
  })
})
