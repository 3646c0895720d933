import { afterEach, describe, expect, it } from 'vitest'
import { realTime, utf8 } from '@kvorum/core'
import { type MemoryCluster, type MemoryClusterOptions, memoryCluster, wrapBatches } from '../../../test/support/memory-cluster.js'
import { MemoryTransport } from './testing.js'

let cluster: MemoryCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

/** A memory cluster whose engines and clients read one clock the test moves. */
async function setup(options: MemoryClusterOptions = {}) {
  const clock = { nowMs: 1_000_000 }
  cluster = await memoryCluster({ now: () => clock.nowMs, ...options })
  const c = cluster
  const client = async (skewMs = 0) => {
    const { kv, transport } = await c.client({ time: { ...realTime, now: () => clock.nowMs + skewMs } })
    return { kv, transport, s: kv.store<string>('default', { codec: 'utf8' }) }
  }
  return { c, clock, client }
}

/** The expiry each engine holds for `key`'s versions. */
async function storedExpiries(c: MemoryCluster, key: string): Promise<(number | undefined)[][]> {
  const out: (number | undefined)[][] = []
  for (const e of c.engines.values()) {
    const [res] = await e.get('default', [utf8(key)])
    if (res?.ok) out.push(res.value.map((v) => v.expiresAt))
  }
  return out
}

describe('expiry', () => {
  it('a put with ttlMs reads until its expiry and as absent after, from any replica, which all hold the same expiresAt', async () => {
    const { c, clock, client } = await setup()
    const { s } = await client()
    await s.put('session', 'token', { ttlMs: 60_000, w: 3 })
    expect(await storedExpiries(c, 'session')).toEqual([[1_060_000], [1_060_000], [1_060_000]])
    clock.nowMs += 59_999
    expect(await s.get('session', { r: 1 })).toMatchObject({ found: true, values: ['token'] })
    clock.nowMs += 1
    for (const r of [1, 2, 3]) expect(await s.get('session', { r })).toMatchObject({ found: false, values: [], siblings: 0 })
  })

  it("a put's expiry counts from the coordinating node's clock: a writer ten minutes behind still writes a value that lives its ttl", async () => {
    const { c, clock, client } = await setup()
    const { s } = await client()
    const first = await s.put('session', 'old', { w: 3 })
    const { s: behind } = await client(-600_000)
    await behind.put('session', 'token', { context: first.context, ttlMs: 60_000, w: 3 })
    expect(await storedExpiries(c, 'session')).toEqual([[1_060_000], [1_060_000], [1_060_000]])
    expect(await s.get('session', { r: 3 })).toMatchObject({ found: true, values: ['token'] })
    clock.nowMs += 60_000
    expect(await s.get('session', { r: 3 })).toMatchObject({ found: false, values: [] })
  })

  it("the store's ttlMs applies to puts that name none; a put's ttlMs overrides it, and ttlMs 0 never expires", async () => {
    const { clock, client } = await setup({ stores: [{ name: 'default', ttlMs: 1_000 }] })
    const { s } = await client()
    await s.put('default-ttl', 'a')
    await s.put('longer', 'b', { ttlMs: 5_000 })
    await s.put('forever', 'c', { ttlMs: 0 })
    await s.putMany([{ key: 'many', value: 'd', ttlMs: 5_000 }])
    await s.update('updated', () => 'e')
    clock.nowMs += 1_000
    expect((await s.get('default-ttl')).found).toBe(false)
    expect((await s.get('updated')).found).toBe(false)
    expect((await s.get('longer')).values).toEqual(['b'])
    expect((await s.get('many')).values).toEqual(['d'])
    clock.nowMs += 10_000_000
    expect((await s.get('longer')).found).toBe(false)
    expect((await s.get('forever')).values).toEqual(['c'])
  })

  it('one sibling expiring leaves its concurrent sibling, and a put with the read context supersedes both', async () => {
    const { clock, client } = await setup()
    const { s } = await client()
    await s.put('cart', 'short', { ttlMs: 1_000 })
    await s.put('cart', 'long')
    expect((await s.get('cart')).values.sort()).toEqual(['long', 'short'])
    clock.nowMs += 1_000
    const after = await s.get('cart')
    expect(after).toMatchObject({ found: true, values: ['long'], siblings: 1 })
    await s.put('cart', 'next', { context: after.context })
    // The context covered the expired version too: nothing concurrent is left.
    clock.nowMs -= 1_000
    expect((await s.get('cart')).values).toEqual(['next'])
  })

  it('an expired value still supersedes the value it overwrote, on a replica that missed it and for a reader whose clock lags', async () => {
    const { c, clock, client } = await setup()
    const { s, transport } = await client()
    const first = await s.put('k', 'old', { w: 3 })
    // n3 misses the overwrite: it holds only the old value.
    transport.setReachable('n3', false)
    await s.put('k', 'new', { context: first.context, ttlMs: 1_000, w: 2 })
    transport.setReachable('n3', true)
    const [held] = await (c.engines.get('n3') as NonNullable<ReturnType<typeof c.engines.get>>).get('default', [utf8('k')])
    expect(held?.ok && held.value.map((v) => v.value && new TextDecoder().decode(v.value))).toEqual(['old'])
    clock.nowMs += 1_000
    // Whichever replicas answer, the old value is covered by the expired one: absent, never 'old'.
    expect(await s.get('k', { r: 3 })).toMatchObject({ found: false, values: [] })
    // A reader two minutes behind still sees the new value (skew delays expiry), never the old one.
    const { s: behind } = await client(-120_000)
    expect((await behind.get('k', { r: 3 })).values).toEqual(['new'])
  })

  it('a merge of siblings lives as long as the longest-lived value it merges', async () => {
    const { clock, c } = await setup()
    const { kv } = await c.client({ time: { ...realTime, now: () => clock.nowMs } })
    const s = kv.store<string>('default', { codec: 'utf8', merge: (vs) => vs.sort().join('+') })
    await s.put('m', 'a', { ttlMs: 1_000 })
    await s.put('m', 'b', { ttlMs: 3_000 })
    expect((await s.get('m')).values).toEqual(['a+b'])
    clock.nowMs += 2_000
    expect((await s.get('m')).values).toEqual(['a+b'])
    clock.nowMs += 1_000
    expect((await s.get('m')).found).toBe(false)
  })

  it("a merge's write-back hands back only unexpired values, though the set it wrote holds an expired sibling the reads missed", async () => {
    const { clock, c } = await setup()
    // Every replica holds an expired sibling x; the read replies leave it out (as replies from replicas that lacked it would).
    const hidden = 'zzzzzzzzzzzz'
    const x = { dot: { actor: hidden, counter: 1 }, context: {}, timestamp: 1, value: utf8('x-expired'), expiresAt: clock.nowMs + 500 }
    for (const e of c.engines.values()) await e.mergePut('default', [{ key: utf8('k'), siblings: [x] }])
    const hiding = wrapBatches(c.engines, async (_id, _store, _batch, run) => {
      const out = await run()
      return { ...out, gets: out.gets.map((g) => (g.ok ? { ok: true as const, value: g.value.filter((v) => v.dot.actor !== hidden) } : g)) }
    })
    const { kv } = await c.client({ transport: new MemoryTransport(hiding), time: { ...realTime, now: () => clock.nowMs } })
    await kv.store<string>('default', { codec: 'utf8' }).put('k', 'a', { w: 3 })
    await kv.store<string>('default', { codec: 'utf8' }).put('k', 'b', { w: 3 })
    clock.nowMs += 1_000
    const merging = kv.store<string>('default', { codec: 'utf8', merge: (vs) => vs.sort().join('+') })
    expect(await merging.get('k')).toMatchObject({ found: true, values: ['a+b'], siblings: 2 })
  })

  it('an expired key is reaped by repair after the grace period, as a tombstone is, and not before', async () => {
    const { c, clock, client } = await setup({ stores: [{ name: 'default', tombstoneGraceMs: 10_000 }] })
    const { kv, s } = await client()
    await s.put('gone', 'v', { ttlMs: 1_000, w: 3 })
    await s.put('kept', 'v', { w: 3 })
    clock.nowMs += 5_000
    expect((await kv.repair()).tombstonesReaped).toBe(0)
    clock.nowMs += 6_001
    expect((await kv.repair()).tombstonesReaped).toBe(1)
    expect(await storedExpiries(c, 'gone')).toEqual([[], [], []])
    expect((await s.get('kept')).values).toEqual(['v'])
  })

  it('a bad ttlMs is refused before anything is sent', async () => {
    const { c, client } = await setup()
    const { s } = await client()
    for (const ttlMs of [-1, 1.5, Number.NaN, 11 * 365 * 24 * 3600 * 1000]) {
      await expect(s.put('k', 'v', { ttlMs })).rejects.toMatchObject({ code: 'KV_INVALID_INPUT', message: expect.stringMatching(/ttlMs must be/) })
    }
    await expect(s.putMany([{ key: 'k', value: 'v', ttlMs: -5 }])).rejects.toMatchObject({ code: 'KV_INVALID_INPUT' })
    expect(await storedExpiries(c, 'k')).toEqual([[], [], []])
  })
})
