import { afterEach, describe, expect, it } from 'vitest'
import { type ClusterDef, KvorumError, utf8 } from '@kvorum/core'
import { type MemoryCluster, memoryCluster } from '../../../test/support/memory-cluster.js'

let cluster: MemoryCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

async function versions(c: MemoryCluster): Promise<(number | undefined)[]> {
  return Promise.all([...c.engines.values()].map(async (e) => (await e.getCluster())?.version))
}

async function rejection(p: Promise<unknown>): Promise<KvorumError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  )
  if (!(e instanceof KvorumError)) throw new Error(`expected a KvorumError, got ${String(e)}`)
  return e
}

describe('stores are added and changed after init', () => {
  it('a created store is on every node and takes writes; a client that connected before uses it after its next refresh', async () => {
    cluster = await memoryCluster()
    const { kv: admin } = await cluster.client()
    const { kv: app } = await cluster.client({ pollIntervalMs: 50 })
    const def = await admin.createStore({ name: 'carts', n: 3, r: 1, w: 3 })
    expect(def.version).toBe(2)
    expect(await versions(cluster)).toEqual([2, 2, 2])
    await admin.store('carts').put('c1', utf8('apple'))
    for (let i = 0; i < 100 && !app.cluster.stores.some((s) => s.name === 'carts'); i++) await new Promise((r) => setTimeout(r, 10))
    const res = await app.store('carts').get('c1')
    expect(res.values.map((v) => new TextDecoder().decode(v))).toEqual(['apple'])
    // w=3: every replica holds it after one acknowledged put.
    const held = await Promise.all([...cluster.engines.values()].map(async (e) => (await e.get('carts', [utf8('c1')]))[0]))
    expect(held.every((h) => h?.ok && h.value.length === 1)).toBe(true)
  })

  it('an altered store applies its new quorum to the next write, and keeps what it stored', async () => {
    cluster = await memoryCluster()
    const { kv, transport } = await cluster.client()
    await kv.store('default').put('k', utf8('v1'))
    const def = await kv.alterStore('default', { w: 3 })
    expect(def.stores[0]).toMatchObject({ name: 'default', n: 3, r: 2, w: 3 })
    // One replica cut: w=2 would succeed, w=3 cannot.
    transport.setReachable('n3', false)
    const e = await rejection(kv.store('default').put('k2', utf8('v')))
    expect(e.code).toBe('KV_QUORUM_NOT_MET')
    transport.setReachable('n3', true)
    const res = await kv.store('default').get('k')
    expect(res.values.map((v) => new TextDecoder().decode(v))).toEqual(['v1'])
  })

  it('refuses a change of n, an existing name, a bad setting, and any change while a plan runs; nothing is installed', async () => {
    cluster = await memoryCluster()
    const { kv } = await cluster.client()
    expect((await rejection(kv.alterStore('default', { n: 2 } as never))).message).toMatch(/n is 3; changing it moves/)
    expect((await rejection(kv.createStore({ name: 'default', w: 3 }))).message).toMatch(/already exists with other settings/)
    expect((await rejection(kv.alterStore('default', { w: 4 }))).message).toMatch(/w must be 1\.\.n/)
    expect((await rejection(kv.alterStore('nope', { w: 1 }))).code).toBe('KV_UNKNOWN_STORE')
    expect(await versions(cluster)).toEqual([1, 1, 1])
    const moving: ClusterDef = {
      ...cluster.cluster,
      version: 2,
      move: {
        planId: 'p1-x',
        step: 1,
        steps: 1,
        stage: 'write-both',
        next: cluster.cluster.assignment,
        target: cluster.cluster.assignment,
        targetNodes: cluster.cluster.nodes,
        entriesPerStep: 8,
      },
    }
    await cluster.install(moving)
    expect((await rejection(kv.createStore({ name: 'later' }))).message).toMatch(/plan p1-x is in progress/)
    expect(await versions(cluster)).toEqual([2, 2, 2])
  })

  it('a node refuses a pushed definition that drops a store or changes its n, keeping its own', async () => {
    cluster = await memoryCluster({ stores: [{ name: 'default' }, { name: 'other' }] })
    const engine = cluster.engines.get('n1')
    if (!engine) throw new Error('assertion failed: n1')
    const base = cluster.cluster
    const dropped = { ...base, version: 2, stores: base.stores.filter((s) => s.name !== 'other') }
    await expect(engine.putCluster(dropped)).rejects.toThrow(/store other is missing .* stores cannot be removed/)
    const fewer = { ...base, version: 2, stores: base.stores.map((s) => (s.name === 'other' ? { ...s, n: 2, r: 2, w: 2 } : s)) }
    await expect(engine.putCluster(fewer)).rejects.toThrow(/n changes from 3 to 2/)
    expect((await engine.getCluster())?.version).toBe(1)
  })

  it('running a create again after it failed half-way finishes it, and is a no-op once done', async () => {
    cluster = await memoryCluster()
    const { kv, transport } = await cluster.client()
    transport.setReachable('n3', false)
    await expect(kv.createStore({ name: 'carts' }, { barrierTimeoutMs: 300 })).rejects.toMatchObject({ code: 'KV_NODE_UNAVAILABLE' })
    transport.setReachable('n3', true)
    const def = await kv.createStore({ name: 'carts' })
    expect(def.stores.map((s) => s.name)).toEqual(['default', 'carts'])
    expect(await versions(cluster)).toEqual([2, 2, 2])
    expect((await kv.createStore({ name: 'carts' })).version).toBe(2)
  })

  it('two creates racing on one node: the second definition of the same version is refused, not installed over the first', async () => {
    cluster = await memoryCluster()
    const engine = cluster.engines.get('n1')
    if (!engine) throw new Error('assertion failed: n1')
    const base = cluster.cluster
    const alpha = { ...base, version: 2, stores: [...base.stores, { ...base.stores[0], name: 'alpha' } as ClusterDef['stores'][0]] }
    const beta = { ...base, version: 2, stores: [...base.stores, { ...base.stores[0], name: 'beta' } as ClusterDef['stores'][0]] }
    const results = await Promise.allSettled([engine.putCluster(alpha), engine.putCluster(beta)])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected'])
    expect((await engine.getCluster())?.stores.map((s) => s.name)).toEqual(['default', 'alpha'])
  })

  it('after two creates raced (some nodes hold one, some the other), the next store command keeps both', async () => {
    cluster = await memoryCluster()
    const base = cluster.cluster
    const store = (name: string) => ({ ...(base.stores[0] as ClusterDef['stores'][0]), name })
    const alpha = { ...base, version: 2, stores: [...base.stores, store('alpha')] }
    const beta = { ...base, version: 2, stores: [...base.stores, store('beta')] }
    await cluster.engines.get('n1')?.putCluster(alpha)
    await cluster.engines.get('n2')?.putCluster(alpha)
    await cluster.engines.get('n3')?.putCluster(beta)
    const { kv } = await cluster.client()
    // The command that lost the race, run again, finds the split and heals it.
    const def = await kv.createStore({ ...store('beta') })
    expect(def.version).toBe(3)
    for (const e of cluster.engines.values()) expect((await e.getCluster())?.stores.map((s) => s.name)).toEqual(['default', 'alpha', 'beta'])
    const next = await kv.createStore({ name: 'gamma' })
    expect(next.stores.map((s) => s.name)).toEqual(['default', 'alpha', 'beta', 'gamma'])
    expect(await versions(cluster)).toEqual([4, 4, 4])
  })

  it('does not heal a split while a node does not answer: it could hold a store the union would lack', async () => {
    cluster = await memoryCluster()
    const base = cluster.cluster
    const store = (name: string) => ({ ...(base.stores[0] as ClusterDef['stores'][0]), name })
    const v2 = (name: string) => ({ ...base, version: 2, stores: [...base.stores, store(name)] })
    await cluster.engines.get('n1')?.putCluster(v2('alpha'))
    await cluster.engines.get('n2')?.putCluster(v2('beta'))
    await cluster.engines.get('n3')?.putCluster(v2('gamma'))
    const { kv, transport } = await cluster.client()
    transport.setReachable('n3', false)
    await expect(kv.createStore({ name: 'delta' }, { barrierTimeoutMs: 300 })).rejects.toBeInstanceOf(Error)
    expect(await versions(cluster)).toEqual([2, 2, 2])
    transport.setReachable('n3', true)
    const healed = await kv.createStore({ name: 'delta' })
    expect(healed.stores.map((s) => s.name).sort()).toEqual(['alpha', 'beta', 'default', 'delta', 'gamma'])
  })
})
