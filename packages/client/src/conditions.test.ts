import { afterEach, describe, expect, it } from 'vitest'
import { type StoreBatch, NodeUnavailableError, OverloadedError, realTime } from '@kvorum/core'
import { type MemoryCluster, memoryCluster, wrapBatches } from '../../../test/support/memory-cluster.js'
import { MemoryTransport } from './testing.js'

let cluster: MemoryCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

async function setup() {
  const clock = { nowMs: 1_000_000 }
  cluster = await memoryCluster({ now: () => clock.nowMs })
  const { kv } = await cluster.client({ time: { ...realTime, now: () => clock.nowMs } })
  return { c: cluster, clock, s: kv.store<string>('default', { codec: 'utf8' }) }
}

const failed = {
  code: 'KV_CONDITION_FAILED',
  message: expect.stringMatching(/best effort.*concurrent writers through other coordinators can still make siblings/),
}

describe('put ifAbsent', () => {
  it('writes a key that is absent, deleted or expired, and refuses one that holds a value, writing nothing', async () => {
    const { clock, s } = await setup()
    await s.put('new', 'a', { ifAbsent: true })
    expect((await s.get('new')).values).toEqual(['a'])
    await expect(s.put('new', 'b', { ifAbsent: true })).rejects.toMatchObject(failed)
    expect((await s.get('new', { r: 3 })).values).toEqual(['a'])

    await s.put('deleted', 'x')
    await s.delete('deleted')
    await s.put('deleted', 'y', { ifAbsent: true })
    await s.put('expired', 'x', { ttlMs: 1000 })
    clock.nowMs += 1000
    await s.put('expired', 'y', { ifAbsent: true })
    // The conditional put superseded the tombstone and the expired version: one value, no siblings.
    for (const key of ['deleted', 'expired']) expect(await s.get(key, { r: 3 })).toMatchObject({ values: ['y'], siblings: 1 })
  })
})

describe('put ifUnchanged', () => {
  it('writes over exactly what the context saw, and refuses when the key was written since', async () => {
    const { s } = await setup()
    await s.put('k', 'one')
    const seen = await s.get('k')
    await s.put('k', 'two', { ifUnchanged: seen.context })
    expect(await s.get('k')).toMatchObject({ values: ['two'], siblings: 1 })
    await expect(s.put('k', 'three', { ifUnchanged: seen.context })).rejects.toMatchObject(failed)
    expect((await s.get('k', { r: 3 })).values).toEqual(['two'])
    // The empty context is that of an absent key.
    await expect(s.put('k', 'four', { ifUnchanged: '' })).rejects.toMatchObject(failed)
    await s.put('fresh', 'v', { ifUnchanged: '' })
    expect((await s.get('fresh')).values).toEqual(['v'])
  })

  it('refuses two conditions, or a condition with a context, as invalid input', async () => {
    const { s } = await setup()
    const both = /at most one of ifAbsent, ifUnchanged and context/
    await expect(s.put('k', 'v', { ifAbsent: true, ifUnchanged: '' })).rejects.toMatchObject({ code: 'KV_INVALID_INPUT', message: expect.stringMatching(both) })
    await expect(s.put('k', 'v', { ifAbsent: true, context: '' })).rejects.toMatchObject({ code: 'KV_INVALID_INPUT', message: expect.stringMatching(both) })
    await expect(s.put('k', 'v', { ifUnchanged: '!!' })).rejects.toMatchObject({ code: 'KV_INVALID_INPUT' })
    expect((await s.get('k')).found).toBe(false)
  })
})

/** Engines behind a proxy whose batch `gate` may fail (after or before the engine ran it), and a client retrying once at once. */
async function gatedClient(gate: (id: string, batch: StoreBatch, run: () => Promise<unknown>) => Promise<void>) {
  const c = await memoryCluster()
  cluster = c
  const gated = wrapBatches(c.engines, async (id, _store, batch, run) => {
    let out: Awaited<ReturnType<typeof run>> | undefined
    await gate(id, batch, async () => {
      out = await run()
    })
    return out ?? run()
  })
  const { kv } = await c.client({ transport: new MemoryTransport(gated), retry: ({ attempt }) => (attempt === 1 ? 0 : undefined) })
  return kv.store<string>('default', { codec: 'utf8' })
}

describe('a retried conditional put', () => {
  it('whose first attempt stored its value but missed the quorum succeeds on the retry, not KV_CONDITION_FAILED', async () => {
    let failMerges = true
    const s = await gatedClient(async (_id, batch) => {
      if (failMerges && batch.merges.length > 0) throw new OverloadedError(1)
    })
    const first = await s.put('lock', 'mine', { ifAbsent: true })
    failMerges = false
    expect((await s.get('lock', { r: 3 })).values).toEqual(['mine'])
    // The context handed back is the put's own: a put with it supersedes 'mine', leaving no sibling.
    await s.put('lock', 'next', { context: first.context })
    expect(await s.get('lock', { r: 3 })).toMatchObject({ values: ['next'], siblings: 1 })
  })

  it("whose first attempt may have applied, unseen by its coordinator's answer, fails with that attempt's error, never KV_CONDITION_FAILED", async () => {
    let lose = true
    let coordinated = 0
    const s = await gatedClient(async (id, batch, run) => {
      coordinated += batch.coordinates.length
      if (!lose || batch.coordinates.length === 0) return
      // The coordinator stores the write, and its answer is lost.
      lose = false
      await run()
      throw new NodeUnavailableError(id, 'connection reset', { mayHaveApplied: true })
    })
    // r=3: the retry's condition read reaches the coordinator that holds the value.
    const answer = await s.put('lock', 'mine', { ifAbsent: true, r: 3 }).then(
      () => null,
      (e) => e,
    )
    // The retry read its own value and wrote nothing more: the first attempt's error stands.
    expect(answer).toMatchObject({ code: 'KV_INDETERMINATE_WRITE', message: expect.stringMatching(/may or may not have applied/) })
    expect(coordinated).toBe(1)
    expect((await s.get('lock', { r: 3 })).values).toEqual(['mine'])
  })
})

describe('conditions are best effort', () => {
  it('two ifAbsent puts through different clients whose reads both precede both writes both succeed, as siblings', async () => {
    const c = await memoryCluster()
    cluster = c
    // Hold every coordinated write until both clients' condition reads have been answered (2 replies each, r=2).
    let readsAnswered = 0
    let release: () => void = () => undefined
    const bothRead = new Promise<void>((resolve) => (release = resolve))
    const gated = wrapBatches(c.engines, async (_id, _store, batch, run) => {
      if (batch.coordinates.length > 0) await bothRead
      const out = await run()
      if (batch.keys.length > 0 && ++readsAnswered >= 4) release()
      return out
    })
    const a = (await c.client({ transport: new MemoryTransport(gated) })).kv.store<string>('default', { codec: 'utf8' })
    const b = (await c.client({ transport: new MemoryTransport(gated) })).kv.store<string>('default', { codec: 'utf8' })
    const results = await Promise.allSettled([a.put('lock', 'a', { ifAbsent: true }), b.put('lock', 'b', { ifAbsent: true })])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled'])
    const read = await a.get('lock', { r: 3 })
    expect(read.values.sort()).toEqual(['a', 'b'])
    expect(read.siblings).toBe(2)
  })
})
