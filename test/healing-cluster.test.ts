import { afterEach, describe, expect, it } from 'vitest'
import { type KeySet, type NodeDef, type SiblingSet, toHex, utf8 } from '@kvorum/core'
import { detectorOf, handoffWorker } from '@kvorum/client/testing'
import { type ProcessCluster, startCluster } from './support/process-cluster.js'

let cluster: ProcessCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

const T = { timeoutMs: 10_000 }
const dots = (set: SiblingSet) => set.map((v) => `${v.dot.actor}:${v.dot.counter}${v.value === null ? '-' : ''}`).join(',')

/** Every key of the store on one node, as key hex -> dots. */
async function contents(c: ProcessCluster, node: NodeDef): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (let p = 0; p < c.def.partitions; p++) {
    let after: Uint8Array | undefined
    for (let page = 0; page < 1000; page++) {
      const res = await c.transport.node(node).scan(T, 'default', { partition: p, limit: 1000, headsOnly: true, ...(after ? { after } : {}) })
      for (const it of res.items) out.set(toHex(it.key), dots(it.siblings))
      if (!res.next) break
      after = res.next
    }
  }
  return out
}

async function backlog(c: ProcessCluster, target: string): Promise<number> {
  let n = 0
  for (const node of c.def.nodes) {
    if (node.id === target) continue
    n += (await c.transport.node(node).hintTargets(T)).find((t) => t.target === target)?.count ?? 0
  }
  return n
}

function node(c: ProcessCluster, id: string): NodeDef {
  return c.def.nodes.find((n) => n.id === id) as NodeDef
}

describe('self-healing over real node processes', () => {
  it('a node stopped during writes gets all of them through hints after it restarts, and the backlog goes to zero', async () => {
    cluster = await startCluster()
    const kv = await cluster.connect()
    const s = kv.store<string>('default', { codec: 'utf8' })
    const writes = (from: number, to: number) => Promise.all(Array.from({ length: to - from }, (_, i) => s.put(`k${from + i}`, `v${from + i}`)))
    await writes(0, 50)
    await cluster.kill('n2')
    await writes(50, 250)
    // Every write after the kill left a hint; some of the first 50 may have too (their third copy was still on its way).
    const hinted = await backlog(cluster, 'n2')
    expect(hinted).toBeGreaterThanOrEqual(200)
    expect(hinted).toBeLessThanOrEqual(250)
    await cluster.start('n2')
    kv.startHandoff({ intervalMs: 100 })
    const until = Date.now() + 15_000
    while ((await backlog(cluster, 'n2')) > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100))
    expect(await backlog(cluster, 'n2')).toBe(0)
    const [n1, n2] = await Promise.all([contents(cluster, node(cluster, 'n1')), contents(cluster, node(cluster, 'n2'))])
    expect(n2.size).toBe(250)
    expect(n2).toEqual(n1)
  })

  it('a node whose data directory was deleted is restored to its peers exact sibling sets by one repair pass', async () => {
    cluster = await startCluster()
    const kv = await cluster.connect()
    const s = kv.store<string>('default', { codec: 'utf8' })
    await Promise.all(Array.from({ length: 300 }, (_, i) => s.put(`k${i}`, `v${i}`)))
    const { context } = await s.get('k1')
    await Promise.all([s.put('k1', 'left', { context }), s.put('k1', 'right', { context })])
    await s.delete('k2')
    await new Promise((r) => setTimeout(r, 200))
    const before = await contents(cluster, node(cluster, 'n1'))
    await cluster.kill('n3')
    await cluster.start('n3', { wipe: true })
    expect((await contents(cluster, node(cluster, 'n3'))).size).toBe(0)
    const report = await kv.repair()
    expect(report.keysRepaired).toBe(300)
    expect(await contents(cluster, node(cluster, 'n3'))).toEqual(before)
    const roots = await Promise.all(['n1', 'n2', 'n3'].map((id) => cluster?.transport.node(node(cluster, id)).merkleRoots(T, 'default')))
    expect(roots[2]).toEqual(roots[0])
    expect((await kv.repair()).keysRepaired).toBe(0)
  })

  it('keys written with w=1 while the other replicas were cut off converge after one pass, with no reads', async () => {
    cluster = await startCluster()
    const kv = await cluster.connect({ timeoutMs: 1500, requestTimeoutMs: 300 })
    const s = kv.store<string>('default', { codec: 'utf8', w: 1 })
    cluster.pause('n2')
    cluster.pause('n3')
    let acked = 0
    for (let i = 0; i < 30; i++) {
      const res = await s.put(`w1-${i}`, `v${i}`).then(() => true, () => false)
      if (res) acked++
    }
    cluster.resume('n2')
    cluster.resume('n3')
    expect(acked).toBeGreaterThan(0)
    // Fresh client: no hints delivered, no reads, only the repair pass.
    const repairer = await cluster.connect()
    const report = await repairer.repair()
    expect(report.keysRepaired).toBeGreaterThanOrEqual(acked)
    const all = await Promise.all(['n1', 'n2', 'n3'].map((id) => contents(cluster as ProcessCluster, node(cluster as ProcessCluster, id))))
    expect(all[1]).toEqual(all[0])
    expect(all[2]).toEqual(all[0])
    expect([...(all[0] as Map<string, string>).keys()].length).toBeGreaterThanOrEqual(acked)
  })

  it('repairing k keys in a store of 100,000 keys exchanges bytes in proportion to k', async () => {
    cluster = await startCluster({ partitions: 256 })
    const kv = await cluster.connect()
    const value = new Uint8Array(200).fill(1)
    // Load the replicas directly, 1000 keys per request, as if they had long agreed.
    for (let b = 0; b < 100; b++) {
      const items: KeySet[] = Array.from({ length: 1000 }, (_, i) => ({ key: utf8(`key-${b * 1000 + i}`), siblings: [{ dot: { actor: 'load', counter: b * 1000 + i + 1 }, context: {}, timestamp: 1, value }] }))
      const owners = new Map<string, KeySet[]>()
      for (const it of items) for (const id of kv.ring.primaries(kv.ring.partitionOf(it.key), 3)) owners.set(id, [...(owners.get(id) ?? []), it])
      await Promise.all([...owners].map(([id, group]) => cluster?.transport.node(node(cluster, id)).mergePut(T, 'default', group)))
    }
    for (const k of [10, 100]) {
      const victim = node(cluster, 'n1')
      const diverged: KeySet[] = Array.from({ length: k }, (_, i) => ({ key: utf8(`key-${(i * 7919 + k) % 100_000}`), siblings: [{ dot: { actor: `d${k}`, counter: i + 1 }, context: { load: 100_000 }, timestamp: 2, value }] }))
      await cluster.transport.node(victim).mergePut(T, 'default', diverged.filter((d) => kv.ring.primaries(kv.ring.partitionOf(d.key), 3).includes('n1')))
      const report = await kv.repair()
      expect(report.keysRepaired).toBe(k)
      expect(report.bytesExchanged).toBeLessThan(64 * 1024 + 2048 * k)
      const again = await kv.repair()
      expect(again).toMatchObject({ keysRepaired: 0, partitionsDiffering: 0 })
    }
  }, 120_000)

  it('a key deleted while a replica was down stays deleted through repair and reads, and its tombstone is reaped after the grace period', async () => {
    cluster = await startCluster({ stores: [{ name: 'default', tombstoneGraceMs: 1000 }] })
    const kv = await cluster.connect()
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('doomed', 'alive')
    await new Promise((r) => setTimeout(r, 100))
    await cluster.kill('n3')
    await s.delete('doomed')
    await cluster.start('n3')
    // n3 still holds the value; deliver the hints later, after repair and reads have had their chance.
    const onN3 = async () => {
      const [res] = await (cluster as ProcessCluster).transport.node(node(cluster as ProcessCluster, 'n3')).get(T, 'default', [utf8('doomed')])
      return res?.ok ? res.value : []
    }
    expect((await onN3()).some((v) => v.value !== null)).toBe(true)
    await new Promise((r) => setTimeout(r, 300))
    expect((await s.get('doomed', { r: 3 })).found).toBe(false)
    await kv.repair()
    expect((await s.get('doomed', { r: 3 })).found).toBe(false)
    expect((await onN3()).every((v) => v.value === null)).toBe(true)
    await handoffWorker(kv).sweep()
    expect((await s.get('doomed', { r: 3 })).found).toBe(false)
    await new Promise((r) => setTimeout(r, 1100))
    const report = await kv.repair()
    expect(report.tombstonesReaped).toBe(1)
    for (const id of ['n1', 'n2', 'n3']) {
      const [res] = await cluster.transport.node(node(cluster, id)).get(T, 'default', [utf8('doomed')])
      expect(res).toEqual({ ok: true, value: [] })
    }
    expect((await s.get('doomed', { r: 3 })).found).toBe(false)
  })
})
