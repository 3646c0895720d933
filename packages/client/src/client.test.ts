import { afterEach, describe, expect, it } from 'vitest'
import { type ClusterDef, Ring, decodeContext, rebalanceAssignment, utf8 } from '@kvorum/core'
import { type MemoryCluster, memoryCluster } from '../../../test/support/memory-cluster.js'
import { QuorumNotMetError, orSet, type ORSet } from './index.js'
import type { StorageEngine } from '@kvorum/storage'

let cluster: MemoryCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

async function setup(options: Parameters<typeof memoryCluster>[0] = {}) {
  cluster = await memoryCluster(options)
  return cluster
}

/** Wait until `check` is true, polling; fails the test after `ms`. */
async function eventually(check: () => Promise<boolean> | boolean, ms = 2000): Promise<void> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error(`condition not met within ${ms} ms`)
}

/** Sibling sets of a key on every engine, as dot lists. */
async function replicaDots(c: MemoryCluster, key: string): Promise<string[][]> {
  const out: string[][] = []
  for (const e of c.engines.values()) {
    const [res] = await e.get('default', [utf8(key)])
    if (res?.ok) out.push(res.value.map((v) => `${v.dot.actor}:${v.dot.counter}${v.value === null ? '(tomb)' : ''}`))
  }
  return out
}

describe('quorum reads and writes', () => {
  it('reads back what it wrote, with a context that covers it', async () => {
    const c = await setup()
    const { kv } = await c.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    const { context } = await s.put('k', 'v1')
    const res = await s.get('k')
    expect(res).toMatchObject({ found: true, values: ['v1'], siblings: 1, context })
    await eventually(async () => (await replicaDots(c, 'k')).every((d) => d.length === 1))
  })

  it('a put with the read context replaces the value; a stale context makes a sibling', async () => {
    const c = await setup()
    const { kv } = await c.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('cart', 'a')
    const read = await s.get('cart')
    await s.put('cart', 'b', { context: read.context })
    await s.put('cart', 'c', { context: read.context })
    const res = await s.get('cart')
    expect(res.values.sort()).toEqual(['b', 'c'])
    await s.put('cart', 'd', { context: res.context })
    expect((await s.get('cart')).values).toEqual(['d'])
  })

  it('update with a merge function collapses siblings into one value', async () => {
    const c = await setup()
    const { kv } = await c.client()
    const raw = kv.store<string[]>('default', { codec: 'json' })
    await raw.put('cart', ['milk'])
    const read = await raw.get('cart')
    await raw.put('cart', ['milk', 'eggs'], { context: read.context })
    await raw.put('cart', ['milk', 'bread'], { context: read.context })
    expect((await raw.get('cart')).siblings).toBe(2)
    const merged = kv.store<string[]>('default', { codec: 'json', merge: (vs) => [...new Set(vs.flat())].sort() })
    const { value } = await merged.update('cart', (vs) => [...(vs[0] ?? []), 'jam'].sort())
    expect(value).toEqual(['bread', 'eggs', 'jam', 'milk'])
    const after = await raw.get('cart')
    expect(after.siblings).toBe(1)
    expect(after.values).toEqual([['bread', 'eggs', 'jam', 'milk']])
  })

  it('with the OR-set merge, concurrent adds from two writers are all kept', async () => {
    const c = await setup()
    const { kv: a } = await c.client()
    const { kv: b } = await c.client()
    const opts = { codec: 'json' as const, merge: (vs: ORSet<string>[]) => orSet.merge(vs) }
    const sa = a.store<ORSet<string>>('default', opts)
    const sb = b.store<ORSet<string>>('default', opts)
    const added: string[] = []
    for (let i = 0; i < 20; i++) {
      // Both read first, then both write: every round is a real conflict.
      const [ra, rb] = await Promise.all([sa.get('cart'), sb.get('cart')])
      const base = (r: typeof ra) => r.values[0] ?? orSet.empty<string>()
      added.push(`a${i}`, `b${i}`)
      await Promise.all([
        sa.put('cart', orSet.add(base(ra), `a${i}`, `a-${i}`), { context: ra.context }),
        sb.put('cart', orSet.add(base(rb), `b${i}`, `b-${i}`), { context: rb.context }),
      ])
    }
    const final = await sa.get('cart')
    expect(orSet.values(final.values[0] as ORSet<string>).sort()).toEqual(added.sort())
  })

  // Regression: found by the OR-set cluster test. Counters are node-wide, so a put's own clock
  // (context + new dot) can cover a concurrent sibling with a lower counter that the writer never
  // saw; handing that clock back let the next put drop it.
  it('the context a put returns never covers a concurrent sibling the writer did not see', async () => {
    const c = await setup()
    const { kv } = await c.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('k', 'a')
    const { context: seen } = await s.get('k')
    await s.put('k', 'b', { context: seen })
    const mine = await s.put('k', 'c', { context: seen })
    await s.put('k', 'd', { context: mine.context })
    // 'b' must survive; 'c' may stay as a sibling of 'd' (the safe fallback), never the reverse.
    expect((await s.get('k')).values).toEqual(expect.arrayContaining(['b', 'd']))
  })

  it('a lww store keeps one value and loses the concurrent one', async () => {
    const c = await setup({ stores: [{ name: 'default', conflict: 'lww' }] })
    const { kv } = await c.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('k', 'first')
    await s.put('k', 'second')
    const res = await s.get('k')
    expect(res.values).toEqual(['second'])
  })

  it('rejects bad input before anything is sent', async () => {
    const c = await setup({ stores: [{ name: 'default', maxValueBytes: 10 }] })
    const { kv } = await c.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    await expect(s.put('', 'x')).rejects.toMatchObject({ code: 'KV_INVALID_INPUT' })
    await expect(s.put('k'.repeat(1025), 'x')).rejects.toMatchObject({ code: 'KV_INVALID_INPUT' })
    await expect(s.put('k', 'x'.repeat(11))).rejects.toMatchObject({ code: 'KV_INVALID_INPUT' })
    await expect(s.put('k', 'x', { w: 4 })).rejects.toMatchObject({ code: 'KV_INVALID_INPUT' })
    await expect(s.put('k', 'x', { context: 'not a token!' })).rejects.toMatchObject({ code: 'KV_INVALID_INPUT' })
    expect(() => kv.store('nope')).toThrow(expect.objectContaining({ code: 'KV_UNKNOWN_STORE' }))
    expect((await s.get('k')).found).toBe(false)
  })
})

describe('deletes', () => {
  it('a deleted key reads as not found from every replica, and a later put brings it back', async () => {
    const c = await setup()
    const { kv } = await c.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('k', 'v')
    await s.delete('k')
    expect((await s.get('k')).found).toBe(false)
    await eventually(async () => (await replicaDots(c, 'k')).every((d) => d.length === 1 && (d[0] ?? '').endsWith('(tomb)')))
    const read = await s.get('k')
    expect(decodeContext(read.context)).not.toEqual({})
    await s.put('k', 'again', { context: read.context })
    expect((await s.get('k')).values).toEqual(['again'])
  })
})

describe('failures', () => {
  it('with one of three nodes unreachable, r=w=2 still works and a hint is kept for it', async () => {
    const c = await setup()
    const { kv, transport } = await c.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    transport.setReachable('n3', false)
    for (let i = 0; i < 20; i++) await s.put(`k${i}`, `v${i}`)
    for (let i = 0; i < 20; i++) expect((await s.get(`k${i}`)).values).toEqual([`v${i}`])
    await eventually(async () => {
      let hints = 0
      for (const [id, e] of c.engines) if (id !== 'n3') hints += (await e.hintTargets()).find((t) => t.target === 'n3')?.count ?? 0
      return hints === 20
    })
    expect(kv.nodes().find((n) => n.id === 'n3')?.up).toBe(false)
    expect(kv.stats().hintsWritten).toBeGreaterThanOrEqual(20)
  })

  it('with a fourth node, the hint for a down primary goes to the fallback and counts toward w', async () => {
    const c = await setup({ nodes: 4, stores: [{ name: 'default', n: 2, r: 2, w: 2 }] })
    const { kv, transport } = await c.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    const ring = new Ring(c.cluster)
    const key = 'hinted'
    const [first, second] = ring.order(ring.partitionOf(utf8(key)), 2)
    transport.setReachable(second as string, false)
    await s.put(key, 'v')
    const fallback = ring.order(ring.partitionOf(utf8(key)), 2)[2] as string
    const targets = await (c.engines.get(fallback) as NonNullable<ReturnType<typeof c.engines.get>>).hintTargets()
    expect(targets).toEqual([expect.objectContaining({ target: second, count: 1 })])
    expect(first).not.toBe(fallback)
  })

  it('with two of three nodes unreachable, a w=2 put fails with quorum-not-met naming each replica', async () => {
    const c = await setup()
    const { kv, transport } = await c.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    transport.setReachable('n2', false)
    transport.setReachable('n3', false)
    const err = await s.put('k', 'v').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(QuorumNotMetError)
    expect((err as QuorumNotMetError).code).toBe('KV_QUORUM_NOT_MET')
    expect((err as QuorumNotMetError).message).toMatch(/needed 2 acks but 1 answered/)
    expect((err as QuorumNotMetError).replicas.map((r) => r.node).sort()).toEqual(['n2', 'n3'])
    expect(kv.stats().quorumFailures).toBeGreaterThan(0)
  })

  it('a node that comes back is seen as up again by the probe', async () => {
    const c = await setup()
    const { kv, transport } = await c.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    transport.setReachable('n2', false)
    await s.put('a', '1')
    await s.put('b', '1')
    await eventually(() => kv.nodes().find((n) => n.id === 'n2')?.up === false)
    transport.setReachable('n2', true)
    await eventually(() => kv.nodes().find((n) => n.id === 'n2')?.up === true)
  })
})

describe('read repair', () => {
  it('a read sends the merged set to a replica that missed a write', async () => {
    const c = await setup()
    const { kv, transport } = await c.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    transport.setReachable('n3', false)
    await s.put('k', 'v')
    // Drop the hint so only read repair can fix n3.
    for (const e of c.engines.values()) {
      const hints = await e.listHints('n3', 100, 0)
      await e.deleteHints(
        'n3',
        hints.map((h) => ({ id: h.id, seq: h.seq })),
      )
    }
    transport.setReachable('n3', true)
    await eventually(() => kv.nodes().find((n) => n.id === 'n3')?.up === true)
    expect((await replicaDots(c, 'k')).filter((d) => d.length === 0)).toHaveLength(1)
    await s.get('k', { r: 3 })
    await eventually(async () => (await replicaDots(c, 'k')).every((d) => d.length === 1))
    expect(kv.stats().readRepairs).toBeGreaterThan(0)
  })
})

describe('read repair and puts in flight', () => {
  /** Hold every batch carrying merges into `node`'s engine until the returned release() is called. */
  function holdMerges(c: MemoryCluster, node: string) {
    let release: () => void = () => undefined
    const gate = new Promise<void>((r) => (release = r))
    const engine = c.engines.get(node) as StorageEngine
    const batch = engine.batch.bind(engine)
    engine.batch = async (store, b) => {
      if (b.merges.length > 0) await gate
      return batch(store, b)
    }
    return () => release()
  }
  const primariesOf = (c: MemoryCluster, key: string) => new Ring(c.cluster).primaries(new Ring(c.cluster).partitionOf(utf8(key)), 3)

  it('a replica behind only by a put still on its way there is not repaired; the put brings it', async () => {
    const c = await setup()
    // Two requests in flight per node, so a read can pass the merge that is held.
    const { kv } = await c.client({ batch: { maxInFlightPerNode: 2 } })
    const s = kv.store<string>('default', { codec: 'utf8' })
    const [, , last] = primariesOf(c, 'k') as [string, string, string]
    const release = holdMerges(c, last)
    await s.put('k', 'v')
    const read = await s.get('k', { r: 3 })
    expect(read.values).toEqual(['v'])
    await new Promise((r) => setTimeout(r, 50))
    expect(kv.stats().readRepairsSkipped).toBe(1)
    expect(kv.stats().readRepairs).toBe(0)
    expect((await replicaDots(c, 'k')).filter((d) => d.length === 0)).toHaveLength(1)
    release()
    await eventually(async () => (await replicaDots(c, 'k')).every((d) => d.length === 1))
  })

  it('a replica that answered just before our put reached it is not repaired once the put is acknowledged there', async () => {
    const c = await setup()
    // No speculative third read: the two primaries asked must be the ones answering.
    const { kv } = await c.client({ batch: { maxInFlightPerNode: 2 }, readSpeculateMs: 10_000 })
    const s = kv.store<string>('default', { codec: 'utf8' })
    const [first, second] = primariesOf(c, 'k') as [string, string, string]
    const { context } = await s.put('k', 'v0')
    let release: () => void = () => undefined
    const gate = new Promise<void>((r) => (release = r))
    // The second primary reads now and answers later; the first reads only once released.
    const late = c.engines.get(second) as StorageEngine
    const lateBatch = late.batch.bind(late)
    late.batch = async (store, b) => {
      const out = await lateBatch(store, b)
      if (b.keys.length > 0) await gate
      return out
    }
    const early = c.engines.get(first) as StorageEngine
    const earlyBatch = early.batch.bind(early)
    early.batch = async (store, b) => {
      if (b.keys.length > 0) await gate
      return earlyBatch(store, b)
    }
    const read = s.get('k')
    await new Promise((r) => setTimeout(r, 20))
    await s.put('k', 'v1', { context })
    release()
    expect((await read).values).toEqual(['v1'])
    await new Promise((r) => setTimeout(r, 50))
    expect(kv.stats().readRepairs).toBe(0)
    expect(kv.stats().readRepairsSkipped).toBe(1)
  })

  it('a replica missing more than what is on its way is repaired', async () => {
    const c = await setup()
    // Two requests in flight per node, so a read can pass the merge that is held.
    const { kv } = await c.client({ batch: { maxInFlightPerNode: 2 } })
    const s = kv.store<string>('default', { codec: 'utf8' })
    const [first, second, last] = primariesOf(c, 'k') as [string, string, string]
    // A version only the second primary holds (as if written by a client we never heard from).
    const [elsewhere] = (
      await (c.engines.get(second) as StorageEngine).batch('default', {
        keys: [],
        coordinates: [{ key: utf8('k'), value: utf8('other'), context: {}, timestamp: 1 }],
        merges: [],
      })
    ).coordinates
    expect(elsewhere?.ok).toBe(true)
    const release = holdMerges(c, last)
    await s.put('k', 'v')
    const read = await s.get('k', { r: 3 })
    expect([...read.values].sort()).toEqual(['other', 'v'])
    await eventually(() => kv.stats().readRepairs === 2)
    expect(kv.stats().readRepairsSkipped).toBe(0)
    release()
    await eventually(async () => (await replicaDots(c, 'k')).every((d) => d.length === 2))
    expect(first).not.toBe(last)
  })
})

describe('cluster metadata', () => {
  it('refreshes on a stale-metadata answer and retries', async () => {
    const c = await setup({ nodes: 4, stores: [{ name: 'default', n: 1, r: 1, w: 1 }] })
    const { kv } = await c.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    // Version 2 takes n4 out: every partition it owned moves to the others.
    const nodes = c.cluster.nodes.filter((n) => n.id !== 'n4')
    const v2: ClusterDef = { ...c.cluster, version: 2, nodes: c.cluster.nodes, assignment: rebalanceAssignment(c.cluster.assignment, nodes) }
    await c.install(v2)
    const ring1 = new Ring(c.cluster)
    let moved = ''
    for (let i = 0; i < 1000 && !moved; i++) if (ring1.primaries(ring1.partitionOf(utf8(`k${i}`)), 1)[0] === 'n4') moved = `k${i}`
    expect(moved).not.toBe('')
    await s.put(moved, 'v')
    expect(kv.cluster.version).toBe(2)
    expect((await s.get(moved)).values).toEqual(['v'])
    expect(kv.stats().clusterRefreshes).toBeGreaterThanOrEqual(1)
  })
})

describe('coalescing', () => {
  it('concurrent operations to the same node share batch requests', async () => {
    const c = await setup()
    const { kv } = await c.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    await Promise.all(Array.from({ length: 200 }, (_, i) => s.put(`k${i}`, `v${i}`)))
    const got = await s.getMany(Array.from({ length: 200 }, (_, i) => `k${i}`))
    expect([...got.values()].map((g) => g.ok && g.value.values[0])).toEqual(Array.from({ length: 200 }, (_, i) => `v${i}`))
    const { batches, batchedItems } = kv.stats()
    expect(batchedItems / batches).toBeGreaterThan(5)
  })

  it('reads and writes bound for one node leave together as one store batch', async () => {
    const c = await setup()
    const { kv, transport } = await c.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    await Promise.all(Array.from({ length: 30 }, (_, i) => s.put(`k${i}`, `v${i}`)))
    const requests: string[] = []
    transport.intercept = (node, op, _opts, call) => {
      requests.push(`${node} ${op}`)
      return call()
    }
    // Reads and puts started in one turn: each node should see one request carrying both kinds.
    const reads = Array.from({ length: 30 }, (_, i) => s.get(`k${i}`))
    const writes = Array.from({ length: 30 }, (_, i) => s.put(`w${i}`, `x${i}`))
    await Promise.all([...reads, ...writes])
    const first = requests.slice(0, 3)
    expect(first.map((r) => r.split(' ')[1])).toEqual(['batch', 'batch', 'batch'])
    expect(new Set(first.map((r) => r.split(' ')[0])).size).toBe(3)
    expect((await Promise.all(reads)).map((r) => r.values[0])).toEqual(Array.from({ length: 30 }, (_, i) => `v${i}`))
  })

  it('a batch stays within maxBatchBytes: big values leave in several requests', async () => {
    const c = await setup()
    const { kv } = await c.client({ batch: { maxBatchBytes: 64 * 1024 } })
    const s = kv.store<Uint8Array>('default')
    const value = new Uint8Array(20 * 1024).fill(7)
    await Promise.all(Array.from({ length: 12 }, (_, i) => s.put(`big${i}`, value)))
    const { batches, batchedItems } = kv.stats()
    // 12 coordinate-puts of 20 KiB fit 3 to a 64 KiB batch; the merges that follow are as big.
    expect(batchedItems / batches).toBeLessThanOrEqual(3)
    expect((await s.get('big11')).values[0]).toEqual(value)
  })
})
