import { afterEach, describe, expect, it } from 'vitest'
import { type ClusterDef, utf8 } from '@kvorum/core'
import { StorageEngine } from '@kvorum/storage'
import { type MemoryCluster, memoryCluster } from '../../../test/support/memory-cluster.js'

let cluster: MemoryCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

describe('clients carry the cluster definition to nodes that lag (no gossip)', () => {
  it("a wiped node gets the definition from an idle client's poll, and then serves reads", async () => {
    cluster = await memoryCluster()
    const { kv } = await cluster.client({ pollIntervalMs: 50 })
    await kv.store('default').put('k', utf8('v'))
    // n3 loses its disk: a new, empty engine without a definition takes its place.
    cluster.engines.get('n3')?.close()
    const fresh = new StorageEngine({ path: ':memory:', nodeId: 'n3' })
    cluster.engines.set('n3', fresh)
    expect(await fresh.getCluster()).toBeNull()
    for (let i = 0; i < 100 && (await fresh.getCluster()) === null; i++) await new Promise((r) => setTimeout(r, 10))
    expect((await fresh.getCluster())?.version).toBe(cluster.cluster.version)
    const [res] = await fresh.get('default', [utf8('nothing')])
    expect(res?.ok).toBe(true)
  })

  it('a node holding an older definition is brought forward; one with a newer one moves the client', async () => {
    cluster = await memoryCluster()
    const { kv } = await cluster.client({ pollIntervalMs: 50 })
    const v2: ClusterDef = { ...cluster.cluster, version: 2 }
    // Only n1 learns of version 2 (say an operator's command died half-way).
    await cluster.engines.get('n1')?.putCluster(v2)
    for (let i = 0; i < 100 && kv.cluster.version < 2; i++) await new Promise((r) => setTimeout(r, 10))
    expect(kv.cluster.version).toBe(2)
    for (let i = 0; i < 100; i++) {
      const versions = await Promise.all([...cluster.engines.values()].map(async (e) => (await e.getCluster())?.version))
      if (versions.every((v) => v === 2)) break
      await new Promise((r) => setTimeout(r, 10))
    }
    expect(await Promise.all([...cluster.engines.values()].map(async (e) => (await e.getCluster())?.version))).toEqual([2, 2, 2])
  })

  it('polling 0 turns it off', async () => {
    cluster = await memoryCluster()
    const { kv } = await cluster.client({ pollIntervalMs: 0 })
    await cluster.engines.get('n1')?.putCluster({ ...cluster.cluster, version: 2 })
    await new Promise((r) => setTimeout(r, 150))
    expect(kv.cluster.version).toBe(1)
  })
})

describe('a repair pass hands a wiped node its definition too', () => {
  it('after kv.repair() the wiped node holds the definition and its data', async () => {
    cluster = await memoryCluster()
    const { kv } = await cluster.client({ pollIntervalMs: 0 })
    await kv.store('default').put('k', utf8('v'), { w: 3 })
    cluster.engines.get('n2')?.close()
    const fresh = new StorageEngine({ path: ':memory:', nodeId: 'n2' })
    cluster.engines.set('n2', fresh)
    await kv.repair()
    expect((await fresh.getCluster())?.version).toBe(cluster.cluster.version)
    const [res] = await fresh.get('default', [utf8('k')])
    expect(res?.ok && res.value.map((v) => v.value && new TextDecoder().decode(v.value))).toEqual(['v'])
  })
})

describe('stale refusals are counted per client', () => {
  it('a write routed under an older placement is refused, refreshed and retried, and stats() counts the refusal', async () => {
    cluster = await memoryCluster()
    const { kv } = await cluster.client({ pollIntervalMs: 0 })
    expect(kv.stats().staleRefusals).toBe(0)
    // Every partition's placement moves at version 2, which this client has not seen.
    const v2: ClusterDef = { ...cluster.cluster, version: 2, placement: new Array<number>(cluster.cluster.partitions).fill(2) }
    await cluster.install(v2)
    await kv.store('default').put('k', utf8('v'))
    expect(kv.cluster.version).toBe(2)
    expect(kv.stats().staleRefusals).toBeGreaterThan(0)
  })
})
