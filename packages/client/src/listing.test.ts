import { NodeDownError, Placement, type Version, realTime, utf8 } from '@kvorum/core'
import { afterEach, describe, expect, it } from 'vitest'
import { adaptivePageSize } from './partition-scan.js'
import { type MemoryCluster, memoryCluster } from '../../../test/support/memory-cluster.js'

let cluster: MemoryCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

const store = { name: 'default', n: 3 }

function version(actor: string, counter: number, value: string | null): Version {
  return { dot: { actor, counter }, context: {}, timestamp: 1, value: value === null ? null : utf8(value) }
}

/** The replicas of a key's partition in the order a listing asks them. */
function readersOf(c: MemoryCluster, key: string): readonly string[] {
  const placement = new Placement(c.cluster)
  return placement.readers(placement.ring.partitionOf(utf8(key)), store)
}

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of items) out.push(item)
  return out
}

describe('store.keys() and store.entries()', () => {
  it('list every live key of every partition once, and leave deleted keys out', async () => {
    cluster = await memoryCluster()
    const { kv } = await cluster.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    const keys = Array.from({ length: 300 }, (_, i) => `k${i}`)
    await s.putMany(keys.map((key) => ({ key, value: `v-${key}` })))
    for (const k of ['k3', 'k150', 'k299']) await s.delete(k)
    const listed = await all(s.keys({ pageSize: 7 }))
    const live = keys.filter((k) => !['k3', 'k150', 'k299'].includes(k))
    expect(listed.length).toBe(live.length)
    expect(new Set(listed)).toEqual(new Set(live))
    const entries = await all(s.entries())
    expect(entries.find((e) => e.key === 'k42')).toMatchObject({ values: ['v-k42'], siblings: 1 })
    expect(entries).toHaveLength(live.length)
    expect((await all(s.keys({ prefix: 'k29' }))).sort()).toEqual(['k29', 'k290', 'k291', 'k292', 'k293', 'k294', 'k295', 'k296', 'k297', 'k298'])
  })

  it('find a key held by only n − w + 1 replicas (a w=2 write that missed one), where reading one replica misses it', async () => {
    cluster = await memoryCluster()
    const { kv } = await cluster.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    const keys = Array.from({ length: 40 }, (_, i) => `only-two-${i}`)
    for (const key of keys) {
      // The first replica a listing asks lacks the key; the two others hold it.
      for (const node of readersOf(cluster, key).slice(1))
        await cluster.replica(node).mergePut({ timeoutMs: 1000 }, 'default', [{ key: utf8(key), siblings: [version('a1', 1, key)] }])
    }
    expect(new Set(await all(s.keys()))).toEqual(new Set(keys))
    // One replica alone (what n − w + 1 would be for w = n) misses them all: the default is what finds them.
    expect(await all(s.keys({ replicas: 1 }))).toEqual([])
  })

  it('merge the siblings that different replicas hold, as a get does', async () => {
    cluster = await memoryCluster()
    const { kv } = await cluster.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    const [first, second] = readersOf(cluster, 'cart') as [string, string]
    await cluster.replica(first).mergePut({ timeoutMs: 1000 }, 'default', [{ key: utf8('cart'), siblings: [version('a1', 1, 'apple')] }])
    await cluster.replica(second).mergePut({ timeoutMs: 1000 }, 'default', [{ key: utf8('cart'), siblings: [version('a2', 1, 'pear')] }])
    const [entry] = await all(s.entries())
    expect(entry?.values.sort()).toEqual(['apple', 'pear'])
    expect(entry?.siblings).toBe(2)
    // The listed context supersedes both siblings, as a get's does.
    await s.put('cart', 'apple+pear', { context: entry?.context })
    expect((await s.get('cart')).values).toEqual(['apple+pear'])
    // A handle with a merge function lists the merged value.
    const merged = kv.store<string>('default', { codec: 'utf8', merge: (vs) => vs.sort().join('|') })
    await cluster.replica(first).mergePut({ timeoutMs: 1000 }, 'default', [{ key: utf8('two'), siblings: [version('a1', 5, 'x'), version('a2', 5, 'y')] }])
    expect((await all(merged.entries())).find((e) => e.key === 'two')?.values).toEqual(['x|y'])
  })

  it('leave out expired keys and expired siblings, as a get does, with a context that still covers them', async () => {
    let now = 1_000_000
    cluster = await memoryCluster({ now: () => now })
    const { kv } = await cluster.client({ time: { ...realTime, now: () => now } })
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('short', 'gone soon', { ttlMs: 1000 })
    await s.put('long', 'stays', { ttlMs: 60_000 })
    await s.put('both', 'expires', { ttlMs: 1000 })
    await s.put('both', 'lives') // a blind write: a sibling of the expiring one
    now += 5000
    expect((await all(s.keys())).sort()).toEqual(['both', 'long'])
    const both = (await all(s.entries())).find((e) => e.key === 'both')
    expect(both?.values).toEqual(['lives'])
    expect(both?.siblings).toBe(1)
    // The listed context covers the expired sibling too: a put with it leaves one version.
    await s.put('both', 'next', { context: both?.context as string })
    expect((await s.get('both')).values).toEqual(['next'])
  })

  it('a key whose newer tombstone is on one replica and older value on another is not listed', async () => {
    cluster = await memoryCluster()
    const { kv } = await cluster.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    const [first, second] = readersOf(cluster, 'gone') as [string, string]
    await cluster.replica(first).mergePut({ timeoutMs: 1000 }, 'default', [{ key: utf8('gone'), siblings: [version('a1', 1, 'old')] }])
    const tombstone: Version = { dot: { actor: 'a1', counter: 2 }, context: { a1: 1 }, timestamp: 2, value: null }
    await cluster.replica(second).mergePut({ timeoutMs: 1000 }, 'default', [{ key: utf8('gone'), siblings: [tombstone] }])
    expect(await all(s.keys())).toEqual([])
    const [raw] = await all(s.versions())
    expect(raw?.siblings).toEqual([tombstone])
  })
})

describe('store.versions() (what kvorum export writes)', () => {
  it('reads every primary: a tombstone only its coordinator holds (its hint not yet delivered) is exported, so a restore after reaping keeps the key deleted', async () => {
    cluster = await memoryCluster()
    const { kv } = await cluster.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('gone', 'v1', { w: 3 })
    // n=3 w=2, readers [B, C, A]: with B and C down, A coordinated the delete and a hint for B took the
    // second ack; B and C are back before the hint is delivered, so only A (read last) holds the tombstone.
    const [, , coordinator] = readersOf(cluster, 'gone') as [string, string, string]
    const [held] = await cluster.replica(coordinator).get({ timeoutMs: 1000 }, 'default', [utf8('gone')])
    const v1 = (held?.ok ? held.value[0] : undefined) as Version
    const tombstone: Version = { dot: { actor: 'del', counter: 1 }, context: { [v1.dot.actor]: v1.dot.counter }, timestamp: 2, value: null }
    await cluster.replica(coordinator).mergePut({ timeoutMs: 1000 }, 'default', [{ key: utf8('gone'), siblings: [tombstone] }])
    const exported = await all(s.versions())
    expect(exported.find((e) => Buffer.from(e.key).toString('utf8') === 'gone')?.siblings).toEqual([tombstone])
    // Later the hint lands and the tombstone is reaped: the key is absent everywhere (a fresh cluster here).
    // Importing the export within the grace must not bring v1 back.
    const reaped = await memoryCluster()
    try {
      const { kv: after } = await reaped.client()
      const restored = after.store<string>('default', { codec: 'utf8' })
      expect(await restored.restore(exported)).toEqual([{ ok: true, value: null }])
      expect((await restored.get('gone', { r: 3 })).found).toBe(false)
    } finally {
      await reaped.close()
    }
  })

  it('fails with KV_QUORUM_NOT_MET rather than export a partition one of its primaries did not answer for', async () => {
    cluster = await memoryCluster({ partitions: 8 })
    const { kv, transport } = await cluster.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('k', 'v', { w: 3 })
    transport.setReachable('n3', false)
    await expect(all(s.versions())).rejects.toMatchObject({
      code: 'KV_QUORUM_NOT_MET',
      message: expect.stringMatching(/^listing of partition 0 of store default needed 3 replicas but 2 answered/),
    })
    // keys() and entries() still read n − w + 1.
    expect(await all(s.keys())).toEqual(['k'])
  })
})

describe('a listing cursor', () => {
  it('resumes after the last key handed out: pages of a limit cover every key once, then the cursor is undefined', async () => {
    cluster = await memoryCluster({ partitions: 16 })
    const { kv } = await cluster.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    const keys = Array.from({ length: 57 }, (_, i) => `p${i}`)
    await s.putMany(keys.map((key) => ({ key, value: key })))
    const seen: string[] = []
    let cursor: string | undefined
    let pages = 0
    do {
      const page = s.keys({ limit: 10, ...(cursor ? { cursor } : {}) })
      const got = await all(page)
      expect(got.length).toBeLessThanOrEqual(10)
      seen.push(...got)
      cursor = page.cursor
      pages++
    } while (cursor !== undefined && pages < 20)
    expect(cursor).toBeUndefined()
    expect(seen.sort()).toEqual([...keys].sort())
    expect(pages).toBe(6)
  })

  it('is refused, changing nothing, when it is not a cursor or is one of another store', async () => {
    cluster = await memoryCluster({ stores: [{ name: 'default' }, { name: 'other' }] })
    const { kv } = await cluster.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('a', '1')
    await s.put('b', '2')
    const first = s.keys({ limit: 1 })
    await all(first)
    expect(() => kv.store('other').keys({ cursor: first.cursor as string })).toThrow(
      expect.objectContaining({ code: 'KV_INVALID_INPUT', message: expect.stringMatching(/not one of a listing of store other/) }),
    )
    expect(() => s.keys({ cursor: 'not-a-cursor' })).toThrow(expect.objectContaining({ code: 'KV_INVALID_INPUT' }))
    expect(() => s.keys({ limit: 0 })).toThrow(
      expect.objectContaining({ code: 'KV_INVALID_INPUT', message: 'limit must be an integer 1..9007199254740991, got 0' }),
    )
    expect(() => s.keys({ replicas: 4 })).toThrow(expect.objectContaining({ code: 'KV_INVALID_INPUT' }))
  })
})

describe('a listing under failures', () => {
  it('replaces a replica that fails mid-listing with another, and fails naming each replica when too few answer', async () => {
    cluster = await memoryCluster({ partitions: 8 })
    const { kv, transport } = await cluster.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    const keys = Array.from({ length: 100 }, (_, i) => `f${i}`)
    await s.putMany(
      keys.map((key) => ({ key, value: key })),
      { w: 3 },
    )
    let scans = 0
    transport.intercept = async (node, op, _opts, call) => {
      if (op === 'scan' && node === 'n1' && ++scans > 3) throw new NodeDownError('n1')
      return call()
    }
    expect(new Set(await all(s.keys({ pageSize: 5 })))).toEqual(new Set(keys))
    transport.setReachable('n2', false)
    transport.setReachable('n3', false)
    await expect(all(s.keys())).rejects.toMatchObject({
      code: 'KV_QUORUM_NOT_MET',
      message: expect.stringMatching(/^listing of partition 0 of store default needed 2 replicas/),
    })
  })

  it('stops with KV_ABORTED when its signal aborts', async () => {
    cluster = await memoryCluster({ partitions: 8 })
    const { kv } = await cluster.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.putMany(Array.from({ length: 50 }, (_, i) => ({ key: `a${i}`, value: 'v' })))
    const controller = new AbortController()
    const got: string[] = []
    const run = (async () => {
      for await (const k of s.keys({ signal: controller.signal })) {
        got.push(k)
        if (got.length === 5) controller.abort(new Error('enough'))
      }
    })()
    await expect(run).rejects.toMatchObject({ code: 'KV_ABORTED' })
    expect(got).toHaveLength(5)
  })
})

describe('a listing by a client whose cluster definition is stale', () => {
  it('is refused by the nodes (KV_STALE_METADATA), refreshes and lists every key from the new replicas', async () => {
    cluster = await memoryCluster({ nodes: 6, partitions: 8 })
    const { kv: stale } = await cluster.client({ pollIntervalMs: 0 })
    // Version 2 moves every partition to three other nodes (n1 ↔ n4, n2 ↔ n5, n3 ↔ n6): the old
    // replicas hold none of its keys, as nodes that left a partition and dropped its rows.
    const swap = (id: string) => `n${((Number(id.slice(1)) + 2) % 6) + 1}`
    const v2 = { ...cluster.cluster, version: 2, assignment: cluster.cluster.assignment.map(swap), placement: cluster.cluster.assignment.map(() => 2) }
    await cluster.install(v2)
    const { kv: fresh } = await cluster.client()
    const keys = Array.from({ length: 60 }, (_, i) => `moved${i}`)
    await fresh.store<string>('default', { codec: 'utf8' }).putMany(keys.map((key) => ({ key, value: key })))
    expect(stale.cluster.version).toBe(1)
    const s = stale.store<string>('default', { codec: 'utf8' })
    expect(new Set(await all(s.keys({ pageSize: 7 })))).toEqual(new Set(keys))
    expect(stale.cluster.version).toBe(2)
    expect((await all(s.entries())).map((e) => e.key).sort()).toEqual([...keys].sort())
  })
})

describe('store.restore()', () => {
  it('merges whole sets into every replica, and fails a key that fewer than w replicas took', async () => {
    cluster = await memoryCluster()
    const { kv, transport } = await cluster.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    const set = [version('a1', 3, 'restored'), version('a2', 1, 'beside')]
    transport.setReachable('n3', false)
    const [ok] = await s.restore([{ key: utf8('r1'), siblings: set }])
    expect(ok).toEqual({ ok: true, value: null })
    expect((await s.get('r1')).values.sort()).toEqual(['beside', 'restored'])
    transport.setReachable('n2', false)
    const [short] = await s.restore([{ key: utf8('r2'), siblings: set }])
    expect(short).toMatchObject({
      ok: false,
      error: { code: 'KV_QUORUM_NOT_MET', message: expect.stringMatching(/^restore of "r2" needed 2 acks but 1 answered/) },
    })
  })

  it('sends a key again when replicas failed it for a retryable reason (a request timeout under load)', async () => {
    cluster = await memoryCluster()
    const { kv, transport } = await cluster.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    const failed = new Set<string>()
    transport.intercept = async (node, op, _opts, call) => {
      // The first store batch to n2 and to n3 fails; later ones go through.
      if (op === 'batch' && node !== 'n1' && !failed.has(node)) {
        failed.add(node)
        throw new NodeDownError(node)
      }
      return call()
    }
    const [res] = await s.restore([{ key: utf8('retried'), siblings: [version('a1', 1, 'v')] }])
    expect(res).toEqual({ ok: true, value: null })
    expect(failed).toEqual(new Set(['n2', 'n3']))
  })
})

describe('the page size of entries() and versions()', () => {
  it('grows for small values, so a partition takes few round trips', async () => {
    cluster = await memoryCluster({ partitions: 4 })
    const { kv, transport } = await cluster.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    for (let i = 0; i < 4000; i += 500) {
      const put = await s.putMany(
        Array.from({ length: 500 }, (_, j) => ({ key: `small${i + j}`, value: 'v' })),
        { timeoutMs: 10_000 },
      )
      expect([...put.values()].every((r) => r.ok)).toBe(true)
    }
    let scans = 0
    transport.intercept = async (_node, op, _opts, call) => {
      if (op === 'scan') scans++
      return call()
    }
    expect(await all(s.versions())).toHaveLength(4000)
    // About 1,000 keys a partition: fixed pages of 100 take 10 or more scans per replica read (all 3 of
    // each of 4 partitions), adapted ones two or three (100 keys, then up to 1,000).
    expect(scans).toBeLessThanOrEqual(4 * 3 * 3)
    scans = 0
    expect(await all(s.versions({ pageSize: 100 }))).toHaveLength(4000)
    expect(scans).toBeGreaterThanOrEqual(4 * 3 * 9)
  })

  it('aims at about 4 MiB a page, within 10..1,000 keys', () => {
    expect(adaptivePageSize(100 * 150, 100)).toBe(1000)
    expect(adaptivePageSize(100 * 200 * 1024, 100)).toBe(20)
    expect(adaptivePageSize(10 * 1024 * 1024, 10)).toBe(10)
  })
})
