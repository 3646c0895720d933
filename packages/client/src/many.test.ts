import { afterEach, describe, expect, it } from 'vitest'
import { utf8 } from '@kvorum/core'
import { type MemoryCluster, memoryCluster } from '../../../test/support/memory-cluster.js'
import { type Kvorum, MAX_MANY_KEYS } from './index.js'

let cluster: MemoryCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

/** Five nodes, n=3: keys live on different replica sets, so two nodes down fail some keys and not others. */
async function setup() {
  cluster = await memoryCluster({ nodes: 5 })
  const { kv, transport } = await cluster.client({ timeoutMs: 1000 })
  return { kv, transport, s: kv.store('default', { codec: 'utf8' }) }
}

/** A key whose three primaries hold all of `on` and none of `off`. */
function keyWhere(kv: Kvorum, on: string[], off: string[]): string {
  for (let i = 0; i < 10_000; i++) {
    const key = `key-${i}`
    const primaries = kv.ring.primaries(kv.ring.partitionOf(utf8(key)), 3)
    if (on.every((n) => primaries.includes(n)) && !off.some((n) => primaries.includes(n))) return key
  }
  throw new Error('assertion failed: no such key in 10,000')
}

describe('getMany', () => {
  it('answers a Map from each key as given to its result, in the order given; a key given twice is read once', async () => {
    const { s } = await setup()
    await s.putMany([
      { key: 'b', value: 'B' },
      { key: 'a', value: 'A' },
    ])
    const bytesKey = utf8('a')
    const got = await s.getMany(['b', 'missing', 'a', bytesKey])
    expect([...got.keys()]).toEqual(['b', 'missing', 'a', bytesKey])
    expect(got.get('b')).toMatchObject({ ok: true, value: { found: true, values: ['B'] } })
    expect(got.get('missing')).toMatchObject({ ok: true, value: { found: false } })
    expect(got.get(bytesKey)).toBe(got.get('a'))
  })

  it("one key's quorum failure is that key's: the other keys are still read", async () => {
    const { kv, transport, s } = await setup()
    const fine = keyWhere(kv, [], ['n4', 'n5'])
    const cut = keyWhere(kv, ['n4', 'n5'], [])
    await s.putMany([
      { key: fine, value: 'fine' },
      { key: cut, value: 'cut' },
    ])
    transport.setReachable('n4', false)
    transport.setReachable('n5', false)
    // Regression: one failed key rejected the whole getMany, losing every other key's answer.
    const got = await s.getMany([fine, cut])
    expect(got.get(fine)).toMatchObject({ ok: true, value: { values: ['fine'] } })
    expect(got.get(cut)).toMatchObject({ ok: false, error: { code: 'KV_QUORUM_NOT_MET', retryable: true } })
  })
})

describe('putMany and deleteMany', () => {
  it('write each item with its own context, and delete bare keys (read first) and keys with a context', async () => {
    const { s } = await setup()
    const first = await s.putMany([
      { key: 'x', value: '1' },
      { key: 'y', value: '1' },
      { key: 'z', value: '1' },
    ])
    const x = first.get('x')
    expect(x?.ok).toBe(true)
    const context = x?.ok ? x.value.context : ''
    // With its context the new value supersedes; without one it becomes a sibling.
    await s.putMany([
      { key: 'x', value: '2', context },
      { key: 'y', value: '2' },
    ])
    const read = await s.getMany(['x', 'y'])
    expect(read.get('x')).toMatchObject({ ok: true, value: { values: ['2'] } })
    expect(read.get('y')).toMatchObject({ ok: true, value: { siblings: 2 } })
    const y = read.get('y')
    const deleted = await s.deleteMany(['x', { key: 'y', context: y?.ok ? y.value.context : '' }])
    expect([...deleted.values()].map((r) => r.ok)).toEqual([true, true])
    const after = await s.getMany(['x', 'y', 'z'])
    expect([...after.values()].map((r) => r.ok && r.value.found)).toEqual([false, false, true])
  })

  it("one key's failure is that key's, for writes and deletes", async () => {
    const { kv, transport, s } = await setup()
    const fine = keyWhere(kv, [], ['n4', 'n5'])
    const cut = keyWhere(kv, ['n4', 'n5'], [])
    transport.setReachable('n4', false)
    transport.setReachable('n5', false)
    // pw=2: hints on fallbacks do not count, so the key with two primaries down cannot be written.
    const put = await s.putMany(
      [
        { key: fine, value: 'v' },
        { key: cut, value: 'v' },
      ],
      { pw: 2 },
    )
    expect(put.get(fine)?.ok).toBe(true)
    expect(put.get(cut)).toMatchObject({ ok: false, error: { code: 'KV_QUORUM_NOT_MET' } })
    const del = await s.deleteMany([fine, cut], { pw: 2 })
    expect(del.get(fine)?.ok).toBe(true)
    expect(del.get(cut)).toMatchObject({ ok: false, error: { retryable: true } })
  })

  it('bad input anywhere refuses the whole call before anything is sent', async () => {
    const { transport, s } = await setup()
    const calls: string[] = []
    transport.intercept = (node, op, _opts, call) => {
      calls.push(`${node} ${op}`)
      return call()
    }
    await expect(
      s.putMany([
        { key: 'a', value: 'v' },
        { key: '', value: 'v' },
      ]),
    ).rejects.toMatchObject({ code: 'KV_INVALID_INPUT' })
    await expect(
      s.putMany([
        { key: 'a', value: 'v' },
        { key: 'b', value: 7 as never },
      ]),
    ).rejects.toMatchObject({
      code: 'KV_INVALID_INPUT',
      message: expect.stringContaining('key "b"'),
    })
    await expect(
      s.putMany<string | Uint8Array>([
        { key: 'a', value: 'v' },
        { key: utf8('a'), value: 'w' },
      ]),
    ).rejects.toMatchObject({ code: 'KV_INVALID_INPUT', message: 'putMany names key "a" twice: give each key once' })
    await expect(s.deleteMany(['a', 'a'])).rejects.toMatchObject({ code: 'KV_INVALID_INPUT' })
    await expect(s.deleteMany(['a'], { w: 9 })).rejects.toMatchObject({ code: 'KV_INVALID_INPUT' })
    await expect(s.putMany([{ key: 'a', value: 'v', context: 'not a context!' }])).rejects.toMatchObject({ code: 'KV_INVALID_INPUT' })
    expect(calls).toEqual([])
  })

  it.each(['getMany', 'putMany', 'deleteMany'] as const)('%s takes at most MAX_MANY_KEYS keys, and says so', async (op) => {
    const { s } = await setup()
    const keys = Array.from({ length: MAX_MANY_KEYS + 1 }, (_, i) => `k${i}`)
    const run = op === 'putMany' ? s.putMany(keys.map((key) => ({ key, value: 'v' }))) : s[op](keys)
    await expect(run).rejects.toMatchObject({
      code: 'KV_INVALID_INPUT',
      message: `${op} takes at most ${MAX_MANY_KEYS} keys, got ${MAX_MANY_KEYS + 1}: split it into several calls`,
    })
  })
})
