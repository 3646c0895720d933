import { afterEach, describe, expect, it } from 'vitest'
import { type MemoryCluster, memoryCluster } from '../../../test/support/memory-cluster.js'

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
