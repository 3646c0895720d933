import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { type SiblingSet, encodeSetResults, toHex, utf8 } from '@kvorum/core'
import { StorageEngine } from './engine.js'
import { coordinatePut, ok, put, read, singleNodeCluster, values } from './engine.case.js'
import { fileEngines } from './files.case.js'

// The engine's write-behind and key cache (rows.ts), seen from outside: what a
// group commit stores, what later reads answer, and what a fresh open finds.

const { path: newPath, open, forget } = fileEngines('rows')

const keys = ['hot', 'a', 'b', 'c'].map(utf8)

/** Everything a reader can see of the keys: sets by get, the answer's wire bytes (the stored bytes, undecoded), and the Merkle roots. */
async function snapshot(e: StorageEngine) {
  const sets = (await e.get('kv', keys)).map((r) => ok(r))
  const encoded = toHex(encodeSetResults(await e.get('kv', keys)))
  return { sets: sets.map((s) => s.map((v) => ({ ...v, value: v.value && toHex(v.value) }))), encoded, roots: toHex(await e.merkleRoots('kv')) }
}

/** The Merkle roots of an engine given only the final sets, one key per group commit. */
async function referenceRoots(sets: readonly SiblingSet[]): Promise<string> {
  const ref = await open(':memory:')
  for (const [i, set] of sets.entries()) await ref.mergePut('kv', [{ key: keys[i] as Uint8Array, siblings: set }])
  return toHex(await ref.merkleRoots('kv'))
}

describe('write-behind inside a group commit', () => {
  // Rows keeps the cache id of the key it was last asked about; a caller that rewrites one key buffer in place must still reach each key.
  it('one key buffer rewritten in place between writes: every key gets its own row', async () => {
    const e = await open(':memory:')
    const key = utf8('k1')
    for (const [i, value] of ['one', 'two', 'three'].entries()) {
      key[1] = 0x31 + i // k1, k2, k3
      ok((await coordinatePut(e, 'kv', [{ key, value: utf8(value), context: {}, timestamp: 1 }]))[0])
    }
    expect(values(await read(e, 'kv', 'k1'))).toEqual(['one'])
    expect(values(await read(e, 'kv', 'k2'))).toEqual(['two'])
    expect(values(await read(e, 'kv', 'k3'))).toEqual(['three'])
  })

  it('one Node Buffer key rewritten in place between writes (its slice() is a view): every key gets its own row', async () => {
    const e = await open(':memory:')
    const key = Buffer.from('k1')
    for (const [i, value] of ['one', 'two', 'three'].entries()) {
      key[1] = 0x31 + i
      ok((await coordinatePut(e, 'kv', [{ key, value: utf8(value), context: {}, timestamp: 1 }]))[0])
    }
    expect(values(await read(e, 'kv', 'k1'))).toEqual(['one'])
    expect(values(await read(e, 'kv', 'k2'))).toEqual(['two'])
    expect(values(await read(e, 'kv', 'k3'))).toEqual(['three'])
  })

  it('many writes of one key in one group: reads, stored bytes and Merkle leaves agree with a fresh open', async () => {
    const path = newPath()
    const e = await open(path)
    const other = await open(':memory:')
    const foreign = await put(other, 'kv', 'hot', 'from-elsewhere')
    await put(e, 'kv', 'c', 'before')
    // All in one tick, so in one group: 30 concurrent puts, merges of a foreign version, other keys.
    const writes: Promise<unknown>[] = Array.from({ length: 30 }, (_, i) => put(e, 'kv', 'hot', `w${i}`))
    writes.push(
      e.mergePut('kv', [
        { key: utf8('hot'), siblings: foreign },
        { key: utf8('a'), siblings: foreign },
      ]),
    )
    writes.push(put(e, 'kv', 'b', 'only'), e.mergePut('kv', [{ key: utf8('hot'), siblings: foreign }]))
    const cSet = await read(e, 'kv', 'c')
    writes.push(put(e, 'kv', 'c', null, Object.fromEntries(cSet.map((v) => [v.dot.actor, v.dot.counter]))))
    expect(e.queueDepth).toBe(34)
    await Promise.all(writes)

    const hot = await read(e, 'kv', 'hot')
    expect(values(hot)).toEqual(['from-elsewhere', ...Array.from({ length: 30 }, (_, i) => `w${i}`)].sort())
    expect(values(await read(e, 'kv', 'c'))).toEqual([null])
    const seen = await snapshot(e)
    // The stored bytes a read sends are exactly the encoding of the set it answers.
    const sets = (await e.get('kv', keys)).map((r) => ok(r))
    expect(seen.encoded).toEqual(toHex(encodeSetResults(sets.map((value) => ({ ok: true, value })))))
    expect(seen.roots).toBe(await referenceRoots(sets))

    e.close()
    const again = await open(path)
    expect(await snapshot(again)).toEqual(seen)
  })

  it('a group that fails rolls back: the failing write alone is refused, and nothing of it is cached or stored', async () => {
    const path = newPath()
    const e = await open(path)
    await put(e, 'kv', 'hot', 'first')
    const good = [put(e, 'kv', 'hot', 'second'), put(e, 'kv', 'a', 'fine')]
    // A timestamp no frame can carry makes the group throw while storing, after every job ran.
    const bad = coordinatePut(e, 'kv', [{ key: utf8('b'), value: utf8('never'), context: {}, timestamp: -1 }])
    const later = put(e, 'kv', 'hot', 'third')
    await expect(bad).rejects.toThrow(/varint out of range/)
    await Promise.all([...good, later])
    expect(values(await read(e, 'kv', 'hot'))).toEqual(['first', 'second', 'third'])
    expect(await read(e, 'kv', 'b')).toEqual([])
    const seen = await snapshot(e)
    expect(seen.roots).toBe(await referenceRoots((await e.get('kv', keys)).map((r) => ok(r))))
    e.close()
    expect(await snapshot(await open(path))).toEqual(seen)
  })
})

describe('the cache of recently used keys', () => {
  it('stays within its key and byte bounds, and reads of evicted keys still answer from disk', async () => {
    const e = await open(newPath(), { cache: { maxKeys: 8, maxBytes: 16 * 1024 } })
    const big = 'x'.repeat(1000)
    for (let i = 0; i < 60; i++) await put(e, 'kv', `k${i}`, `${i}-${big}`)
    expect(e.cacheSize.keys).toBeLessThanOrEqual(8)
    expect(e.cacheSize.bytes).toBeLessThanOrEqual(16 * 1024)
    for (let i = 0; i < 60; i++) expect(values(await read(e, 'kv', `k${i}`))).toEqual([`${i}-${big}`])
    expect(e.cacheSize.keys).toBeLessThanOrEqual(8)
  })

  it('forgets over many batches of new keys without drifting: exactly its bound cached, every key read back', async () => {
    const e = await open(newPath(), { cache: { maxKeys: 100 } })
    const key = (k: number) => utf8(`n${k}`)
    for (let b = 0; b < 8; b++) {
      const items = Array.from({ length: 500 }, (_, i) => ({
        key: key(b * 500 + i),
        siblings: [{ dot: { actor: 'load', counter: b * 500 + i + 1 }, context: {}, timestamp: 1, value: utf8(`v${b * 500 + i}`) }],
      }))
      await e.mergePut('kv', items)
      expect(e.cacheSize.keys).toBe(100)
    }
    const sample = [0, 1, 499, 2500, 3899, 3900, 3999]
    const got = await e.get('kv', sample.map(key))
    expect(got.map((r) => values(ok(r)))).toEqual(sample.map((k) => [`v${k}`]))
    expect(e.cacheSize.keys).toBe(100)
  })
})

describe('store batches', () => {
  const item = (key: string) => ({ key: utf8(key), value: utf8(`v-${key}`), context: {}, timestamp: 1 })
  const foreign = [{ dot: { actor: 'elsewhere', counter: 1 }, context: {}, timestamp: 1, value: utf8('copied') }]

  it('queue or refuse their writes as a whole: a refused batch applied none of them', async () => {
    const e = await open(':memory:', { maxQueuedRequests: 2 })
    // One write waits; the batch's writes take the last place in the queue, together.
    const waiting = coordinatePut(e, 'kv', [item('first')])
    const taken = e.batch('kv', { keys: [], coordinates: [item('a')], merges: [{ key: utf8('b'), siblings: foreign }] })
    const refused = e.batch('kv', { keys: [], coordinates: [item('c')], merges: [{ key: utf8('d'), siblings: foreign }] })
    await expect(refused).rejects.toMatchObject({ code: 'KV_OVERLOADED' })
    await waiting
    const res = await taken
    expect([...res.coordinates, ...res.merges].every((r) => r.ok)).toBe(true)
    expect(values(await read(e, 'kv', 'a'))).toEqual(['v-a'])
    expect(values(await read(e, 'kv', 'b'))).toEqual(['copied'])
    expect(await read(e, 'kv', 'c')).toEqual([])
    expect(await read(e, 'kv', 'd')).toEqual([])
  })

  it('whose node closes after the commit still answer: writes ok, reads as item errors', async () => {
    const e = new StorageEngine({ path: ':memory:', nodeId: 'n1' })
    await e.putCluster(singleNodeCluster())
    const pending = e.batch('kv', { keys: [utf8('a')], coordinates: [item('a')], merges: [] })
    e.close()
    const res = await pending
    expect(res.coordinates[0]?.ok).toBe(true)
    expect(res.gets[0]).toMatchObject({ ok: false, error: { code: 'KV_NODE_CLOSED' } })
  })
})

describe('the file format', () => {
  it('a database written by a newer format is refused at open with KV_DATA_FORMAT, untouched', async () => {
    const path = newPath()
    const e = await open(path)
    await put(e, 'kv', 'k', 'v')
    e.close()
    forget(e)
    const raw = new Database(path)
    raw.pragma('user_version = 99')
    raw.close()
    expect(() => new StorageEngine({ path, nodeId: 'n1' })).toThrow(expect.objectContaining({ code: 'KV_DATA_FORMAT' }))
    const check = new Database(path, { readonly: true })
    expect(check.pragma('user_version', { simple: true })).toBe(99)
    check.close()
  })

  it('a database holding an expiring row is marked past format 2, so a build from before expiry refuses it instead of misreading the row', async () => {
    // The last format whose builds read a version's flag byte as only 0 or 1 (the disk work's, merged before expiry).
    const beforeExpiry = 2
    const path = newPath()
    const e = await open(path)
    ok((await coordinatePut(e, 'kv', [{ key: utf8('k'), value: utf8('v'), context: {}, timestamp: 1, ttlMs: 60_000 }]))[0])
    e.close()
    forget(e)
    const raw = new Database(path, { readonly: true })
    expect(raw.pragma('user_version', { simple: true })).toBeGreaterThan(beforeExpiry)
    raw.close()
  })
})
