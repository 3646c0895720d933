import { afterEach, describe, expect, it } from 'vitest'
import { type ClusterDef, type SiblingSet, rebalanceAssignment } from '@kvorum/core'
import { type ORSet, QuorumNotMetError, orSet } from '@kvorum/client'
import { type ProcessCluster, startCluster } from './support/process-cluster.js'
import { eventually, replicaSets } from './support/replicas.js'

let cluster: ProcessCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

/** Each node's stored set of `key` in the default store. */
function sets(c: ProcessCluster, key: string): Promise<Map<string, SiblingSet>> {
  return replicaSets(
    c.def.nodes.map((n) => [n.id, c.replica(n.id)] as const),
    'default',
    key,
  )
}

describe('SDK over real node processes', () => {
  it('with one of three nodes killed, r=w=2 puts and gets succeed and hints are kept for it', async () => {
    cluster = await startCluster()
    const kv = await cluster.connect()
    const s = kv.store<string>('default', { codec: 'utf8' })
    await cluster.kill('n3')
    for (let i = 0; i < 30; i++) await s.put(`k${i}`, `v${i}`)
    for (let i = 0; i < 30; i++) expect((await s.get(`k${i}`)).values).toEqual([`v${i}`])
    let hinted = 0
    for (const id of ['n1', 'n2']) {
      const node = cluster.def.nodes.find((n) => n.id === id)
      if (node) hinted += (await cluster.transport.node(node).hintTargets({ timeoutMs: 2000 })).find((t) => t.target === 'n3')?.count ?? 0
    }
    expect(hinted).toBe(30)
  })

  it('with two of three nodes killed, a w=2 put fails with quorum-not-met and says why', async () => {
    cluster = await startCluster()
    const kv = await cluster.connect()
    const s = kv.store<string>('default', { codec: 'utf8' })
    await cluster.kill('n2')
    await cluster.kill('n3')
    const err = await s.put('k', 'v').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(QuorumNotMetError)
    expect((err as QuorumNotMetError).message).toMatch(/needed 2 acks but 1 answered/)
    expect((err as QuorumNotMetError).replicas.map((r) => r.node).sort()).toEqual(['n2', 'n3'])
  })

  it('two writers with the same stale context make two siblings; update with a merge collapses them', async () => {
    cluster = await startCluster()
    const a = await cluster.connect()
    const b = await cluster.connect()
    const sa = a.store<string>('default', { codec: 'utf8' })
    const sb = b.store<string>('default', { codec: 'utf8' })
    await sa.put('k', 'base')
    const { context } = await sa.get('k')
    await Promise.all([sa.put('k', 'from-a', { context }), sb.put('k', 'from-b', { context })])
    const res = await sa.get('k')
    expect(res.values.sort()).toEqual(['from-a', 'from-b'])
    const merged = a.store<string>('default', { codec: 'utf8', merge: (vs) => vs.sort().join('+') })
    await merged.update('k', (vs) => `${vs[0]}!`)
    const after = await sb.get('k', { r: 3 })
    expect(after).toMatchObject({ values: ['from-a+from-b!'], siblings: 1 })
  })

  it('with the OR-set merge, no item added by concurrent writers is lost', async () => {
    cluster = await startCluster()
    const writers = await Promise.all([cluster.connect(), cluster.connect(), cluster.connect()])
    const carts = writers.map((kv) => kv.store<ORSet<string>>('default', { codec: 'json', merge: orSet.merge }))
    const added: string[] = []
    await Promise.all(
      carts.map(async (cart, w) => {
        for (let i = 0; i < 15; i++) {
          const item = `w${w}-item${i}`
          added.push(item)
          await cart.update('cart', ([c = orSet.empty<string>()]) => orSet.add(c, item, item))
        }
      }),
    )
    const final = await (carts[0] as (typeof carts)[0]).get('cart', { r: 3 })
    expect(orSet.values(final.values[0] as ORSet<string>).sort()).toEqual(added.sort())
  })

  it('a read repairs a stale replica, and a deleted key reads as not found from every replica', async () => {
    cluster = await startCluster()
    const kv = await cluster.connect()
    const s = kv.store<string>('default', { codec: 'utf8' })
    await cluster.stop('n2')
    await s.put('k', 'v')
    await cluster.start('n2')
    // Drop the hints kept for n2 so only the read can repair it.
    for (const n of cluster.def.nodes) {
      const hints = await cluster.transport.node(n).listHints({ timeoutMs: 2000 }, 'n2', 100, 0)
      await cluster.transport.node(n).deleteHints(
        { timeoutMs: 2000 },
        'n2',
        hints.map((h) => ({ id: h.id, seq: h.seq })),
      )
    }
    expect((await sets(cluster, 'k')).get('n2')).toEqual([])
    await eventually(async () => kv.nodes().every((n) => n.up))
    expect((await s.get('k', { r: 3 })).values).toEqual(['v'])
    await eventually(async () => [...(await sets(cluster as ProcessCluster, 'k')).values()].every((set) => set.length === 1))
    await s.delete('k')
    await eventually(async () =>
      [...(await sets(cluster as ProcessCluster, 'k')).values()].every((set) => set.length > 0 && set.every((v) => v.value === null)),
    )
    for (const id of ['n1', 'n2', 'n3']) {
      // Read from each replica alone (r=1 with the others paused would be slow; ask the node directly).
      const set = (await sets(cluster, 'k')).get(id) as SiblingSet
      expect(set.every((v) => v.value === null)).toBe(true)
    }
    expect((await s.get('k', { r: 3 })).found).toBe(false)
  })

  it('a node answering with a newer cluster definition makes the SDK refresh and succeed', async () => {
    cluster = await startCluster({ nodes: 4, stores: [{ name: 'default', n: 1, r: 1, w: 1 }] })
    const kv = await cluster.connect()
    const s = kv.store<string>('default', { codec: 'utf8' })
    const v2: ClusterDef = {
      ...cluster.def,
      version: 2,
      assignment: rebalanceAssignment(
        cluster.def.assignment,
        cluster.def.nodes.filter((n) => n.id !== 'n4'),
      ),
    }
    for (const n of cluster.def.nodes) await cluster.transport.node(n).putCluster({ timeoutMs: 2000 }, v2)
    for (let i = 0; i < 40; i++) await s.put(`key-${i}`, `v${i}`)
    expect(kv.cluster.version).toBe(2)
    for (let i = 0; i < 40; i++) expect((await s.get(`key-${i}`)).values).toEqual([`v${i}`])
  })
})
