import { afterEach, describe, expect, it } from 'vitest'
import { type KeySet, type SiblingSet, toHex, utf8 } from '@kvorum/core'
import { StorageEngine } from '@kvorum/storage'
import { type MemoryCluster, memoryCluster } from '../../../test/support/memory-cluster.js'
import { detectorOf, handoffWorker } from '@kvorum/client/testing'

let cluster: MemoryCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

const dots = (set: SiblingSet) => set.map((v) => `${v.dot.actor}:${v.dot.counter}`).sort().join(',')

/** Every key's sibling dots on one engine, by scanning all its partitions. */
async function contents(engine: StorageEngine, q: number): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (let p = 0; p < q; p++) {
    let after: Uint8Array | undefined
    for (;;) {
      const page = await engine.scan('default', { partition: p, limit: 1000, ...(after ? { after } : {}) })
      for (const it of page.items) out.set(toHex(it.key), dots(it.siblings))
      if (!page.next) break
      after = page.next
    }
  }
  return out
}

async function hintBacklog(c: MemoryCluster, target: string): Promise<number> {
  let n = 0
  for (const e of c.engines.values()) n += (await e.hintTargets()).find((t) => t.target === target)?.count ?? 0
  return n
}

describe('hinted handoff', () => {
  it('delivers every write a node missed once it answers, and empties the backlog', async () => {
    cluster = await memoryCluster()
    const { kv, transport } = await cluster.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    transport.setReachable('n3', false)
    for (let i = 0; i < 50; i++) await s.put(`k${i}`, `v${i}`)
    expect(await hintBacklog(cluster, 'n3')).toBe(50)
    transport.setReachable('n3', true)
    detectorOf(kv).success('n3')
    const report = await handoffWorker(kv).sweep()
    expect(report.delivered).toBe(50)
    expect(await hintBacklog(cluster, 'n3')).toBe(0)
    const n1 = await contents(cluster.engines.get('n1') as StorageEngine, 64)
    const n3 = await contents(cluster.engines.get('n3') as StorageEngine, 64)
    expect(n3).toEqual(n1)
  })

  it('a hint for a key deleted later carries the tombstone, so late delivery cannot resurrect it', async () => {
    cluster = await memoryCluster()
    const { kv, transport } = await cluster.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    transport.setReachable('n3', false)
    await s.put('gone', 'v1')
    await s.delete('gone')
    transport.setReachable('n3', true)
    detectorOf(kv).success('n3')
    await handoffWorker(kv).sweep()
    const [res] = await (cluster.engines.get('n3') as StorageEngine).get('default', [utf8('gone')])
    expect(res?.ok && res.value.every((v) => v.value === null)).toBe(true)
    expect((await s.get('gone', { r: 3 })).found).toBe(false)
  })
})

describe('anti-entropy', () => {
  it('restores a wiped replica to its peers exact sibling sets in one pass; a second pass repairs nothing', async () => {
    cluster = await memoryCluster()
    const { kv } = await cluster.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    await Promise.all(Array.from({ length: 300 }, (_, i) => s.put(`k${i}`, `v${i}`)))
    const read = await s.get('k7')
    await Promise.all([s.put('k7', 'x', { context: read.context }), s.put('k7', 'y', { context: read.context })])
    const before = await contents(cluster.engines.get('n1') as StorageEngine, 64)
    // Wipe n2: a fresh empty engine under the same id.
    ;(cluster.engines.get('n2') as StorageEngine).close()
    const fresh = new StorageEngine({ path: ':memory:', nodeId: 'n2' })
    await fresh.putCluster(cluster.cluster)
    cluster.engines.set('n2', fresh)
    const first = await kv.repair()
    expect(first.keysRepaired).toBe(300)
    expect(await contents(fresh, 64)).toEqual(before)
    expect(await fresh.merkleRoots('default')).toEqual(await (cluster.engines.get('n1') as StorageEngine).merkleRoots('default'))
    const second = await kv.repair()
    expect(second).toMatchObject({ keysRepaired: 0, partitionsDiffering: 0 })
  })

  it('converges writes made with w=1 while other replicas were cut off, without any read', async () => {
    cluster = await memoryCluster()
    const { kv, transport } = await cluster.client()
    const s = kv.store<string>('default', { codec: 'utf8', w: 1 })
    transport.setReachable('n2', false)
    transport.setReachable('n3', false)
    for (let i = 0; i < 40; i++) await s.put(`w1-${i}`, `v${i}`)
    // Drop the parked hints so only anti-entropy can heal.
    for (const e of cluster.engines.values()) for (const t of ['n2', 'n3']) await e.deleteHints(t, (await e.listHints(t, 1000, 0)).map((h) => ({ id: h.id, seq: h.seq })))
    transport.setReachable('n2', true)
    transport.setReachable('n3', true)
    const report = await kv.repair()
    expect(report.keysRepaired).toBe(40)
    const all = await Promise.all(['n1', 'n2', 'n3'].map((id) => contents(cluster?.engines.get(id) as StorageEngine, 64)))
    expect(all[1]).toEqual(all[0])
    expect(all[2]).toEqual(all[0])
  })

  it('exchanges bytes in proportion to the differences, not to the data', async () => {
    cluster = await memoryCluster({ partitions: 256 })
    const { kv } = await cluster.client()
    const engines = [...cluster.engines.values()]
    // Load 20,000 identical keys straight into the engines (as replicas would hold them).
    const value = new Uint8Array(100).fill(7)
    for (let b = 0; b < 20; b++) {
      const batch: KeySet[] = Array.from({ length: 1000 }, (_, i) => ({ key: utf8(`key-${b * 1000 + i}`), siblings: [{ dot: { actor: 'seed', counter: b * 1000 + i + 1 }, context: {}, timestamp: 1, value }] }))
      for (const e of engines) await e.mergePut('default', batch)
    }
    const quiet = await kv.repair()
    expect(quiet.keysRepaired).toBe(0)
    const k = 25
    const diverged: KeySet[] = Array.from({ length: k }, (_, i) => ({ key: utf8(`key-${i * 97}`), siblings: [{ dot: { actor: 'other', counter: i + 1 }, context: { seed: 20_000 }, timestamp: 2, value }] }))
    await (engines[0] as StorageEngine).mergePut('default', diverged)
    const report = await kv.repair()
    expect(report.keysRepaired).toBe(k)
    expect(report.bytesExchanged).toBeLessThan(64 * 1024 + 2048 * k)
    expect(report.bytesExchanged).toBeGreaterThan(quiet.bytesExchanged)
  })
})

describe('tombstones', () => {
  it('a key deleted while a replica was down stays deleted through repair and reads, and is reaped after the grace period', async () => {
    cluster = await memoryCluster({ stores: [{ name: 'default', tombstoneGraceMs: 200 }] })
    const { kv, transport } = await cluster.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('doomed', 'v1')
    transport.setReachable('n3', false)
    await s.delete('doomed')
    for (const e of cluster.engines.values()) await e.deleteHints('n3', (await e.listHints('n3', 1000, 0)).map((h) => ({ id: h.id, seq: h.seq })))
    transport.setReachable('n3', true)
    detectorOf(kv).success('n3')
    // n3 still holds v1; a read from all three and a repair pass must not bring it back.
    expect((await s.get('doomed', { r: 3 })).found).toBe(false)
    await kv.repair()
    expect((await s.get('doomed', { r: 3 })).found).toBe(false)
    for (const e of cluster.engines.values()) {
      const [res] = await e.get('default', [utf8('doomed')])
      expect(res?.ok && res.value.length > 0 && res.value.every((v) => v.value === null)).toBe(true)
    }
    await new Promise((r) => setTimeout(r, 250))
    const report = await kv.repair()
    expect(report.tombstonesReaped).toBe(1)
    for (const e of cluster.engines.values()) {
      const [res] = await e.get('default', [utf8('doomed')])
      expect(res).toEqual({ ok: true, value: [] })
    }
    expect((await s.get('doomed', { r: 3 })).found).toBe(false)
  })

  it('keeps tombstones while any node still holds hints for a replica', async () => {
    cluster = await memoryCluster({ stores: [{ name: 'default', tombstoneGraceMs: 0 }] })
    const { kv, transport } = await cluster.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('a', '1')
    await s.delete('a')
    transport.setReachable('n3', false)
    await s.put('other', 'x')
    const until = Date.now() + 2000
    while ((await hintBacklog(cluster, 'n3')) === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5))
    expect(await hintBacklog(cluster, 'n3')).toBe(1)
    transport.setReachable('n3', true)
    detectorOf(kv).success('n3')
    expect((await kv.repair()).tombstonesReaped).toBe(0)
    await handoffWorker(kv).sweep()
    expect((await kv.repair()).tombstonesReaped).toBe(1)
  })
})
