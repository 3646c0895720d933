import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { type ClusterDef, type HintItem, realTime, utf8 } from '@kvorum/core'
import { StorageEngine } from './engine.js'
import { Q, coordinatePut, ok, singleNodeCluster } from './engine.case.js'
import { Hints } from './hints.js'
import { applySchema } from './schema.js'
import { StoreSizes } from './store-sizes.js'

const dir = mkdtempSync(join(tmpdir(), 'kvorum-stats-'))
let files = 0
const opened: StorageEngine[] = []
afterEach(() => {
  for (const e of opened.splice(0)) e.close()
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let clockMs = 1_000_000
const time = { ...realTime, now: () => clockMs }
const open = (path: string, maxHintAgeMs = 60_000) => {
  const e = new StorageEngine({ path, nodeId: 'n1', time, maxHintAgeMs })
  opened.push(e)
  return e
}

/** What the table holds, counted the slow way: keys and key + set bytes per store. */
function counted(path: string): Record<string, { keys: number; bytes: number }> {
  const db = new Database(path, { readonly: true })
  try {
    const rows = db.prepare('SELECT store, count(*) AS keys, sum(length(key) + length(data)) AS bytes FROM kv GROUP BY store').all() as {
      store: string
      keys: number
      bytes: number
    }[]
    return Object.fromEntries(rows.map(({ store, keys, bytes }) => [store, { keys, bytes }]))
  } finally {
    db.close()
  }
}

const sizesOf = (e: StorageEngine) => Object.fromEntries(e.storeSizes)
const write = (key: string, value: string | null, context = {}) => ({ key: utf8(key), value: value === null ? null : utf8(value), context, timestamp: clockMs })
const hint = (key: string, value: string): HintItem => ({
  store: 'kv',
  key: utf8(key),
  siblings: [{ dot: { actor: 'writer', counter: 1 }, context: {}, timestamp: clockMs, value: utf8(value) }],
})
/** The backlog per target as hintTargets counts it in SQL. */
const targets = async (e: StorageEngine) => Object.fromEntries((await e.hintTargets()).map((t) => [t.target, t.count]))

describe('store sizes: keys and bytes per store, kept without scans', () => {
  it('follow inserts, overwrites, deletes, reaps and dropped partitions exactly as the table does', async () => {
    const path = join(dir, `sizes-${files++}.db`)
    const e = open(path)
    await e.putCluster(singleNodeCluster())
    expect(sizesOf(e)).toEqual({})
    await coordinatePut(e, 'kv', [write('a', 'one'), write('b', 'two'), write('c', 'three')])
    await coordinatePut(e, 'last', [write('x', 'lww value')])
    expect(sizesOf(e)).toEqual(counted(path))
    expect(e.storeSizes.get('kv')?.keys).toBe(3)

    // An overwrite with the context changes bytes, not keys; a longer value adds bytes.
    const [a] = await coordinatePut(e, 'kv', [write('a', 'one, but much longer')])
    expect(sizesOf(e)).toEqual(counted(path))
    // A delete keeps a tombstone row until it is reaped.
    const [deleted] = await coordinatePut(e, 'kv', [write('b', null, { [e.incarnation]: 2 })])
    expect(e.storeSizes.get('kv')?.keys).toBe(3)
    expect(sizesOf(e)).toEqual(counted(path))
    expect(await e.reap('kv', [{ key: utf8('b'), siblings: ok(deleted).siblings }])).toBe(1)
    expect(e.storeSizes.get('kv')?.keys).toBe(2)
    expect(sizesOf(e)).toEqual(counted(path))
    expect(ok(a).siblings.length).toBeGreaterThan(0)

    // The node leaves every partition: its rows are dropped, and so are the counts.
    const moved: ClusterDef = {
      ...singleNodeCluster(2),
      nodes: [...singleNodeCluster().nodes, { id: 'n2', url: 'http://127.0.0.1:7002' }],
      assignment: Array.from({ length: Q }, () => 'n2'),
    }
    await e.putCluster(moved)
    expect(counted(path)).toEqual({})
    expect(sizesOf(e)).toEqual({ kv: { keys: 0, bytes: 0 }, last: { keys: 0, bytes: 0 } })
  })

  it('come back from the snapshot after a clean close, and are counted from the table after a crash', async () => {
    const path = join(dir, `sizes-${files++}.db`)
    const first = open(path)
    await first.putCluster(singleNodeCluster())
    await coordinatePut(
      first,
      'kv',
      Array.from({ length: 50 }, (_, i) => write(`k${i}`, `v${i}`)),
    )
    const before = sizesOf(first)
    first.close()

    const second = open(path)
    expect(second.sizesOpened.counted).toBe(false)
    expect(sizesOf(second)).toEqual(before)
    await coordinatePut(second, 'kv', [write('after-clean-open', 'v')])
    second.abandon()

    // No snapshot survives a crash (the open deleted it), so the next open counts the rows.
    const third = open(path)
    expect(third.sizesOpened.counted).toBe(true)
    expect(sizesOf(third)).toEqual(counted(path))
    expect(third.storeSizes.get('kv')?.keys).toBe(51)
  })

  it("sizes SQLite's page cache and mapping as asked, with no mapping by default (mapped pages count in a node's resident memory)", () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvorum-memory-'))
    const db = new Database(join(dir, 'kv.db'))
    try {
      applySchema(db, 'normal')
      expect(db.pragma('cache_size', { simple: true })).toBe(-32 * 1024)
      expect(db.pragma('mmap_size', { simple: true })).toBe(0)
      applySchema(db, 'normal', { pageCacheMiB: 8, mmapMiB: 16 })
      expect(db.pragma('cache_size', { simple: true })).toBe(-8 * 1024)
      expect(db.pragma('mmap_size', { simple: true })).toBe(16 * 1024 * 1024)
    } finally {
      db.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('a rolled-back transaction changes nothing', () => {
    const db = new Database(':memory:')
    try {
      applySchema(db, 'normal')
      const sizes = new StoreSizes(db)
      sizes.change('kv', 1, 10)
      sizes.commit()
      sizes.change('kv', 5, 500)
      sizes.rollback()
      sizes.commit()
      expect(Object.fromEntries(sizes.all)).toEqual({ kv: { keys: 1, bytes: 10 } })
    } finally {
      db.close()
    }
  })
})

describe('hints pending per target, kept without scans', () => {
  it('follow puts, re-hints of a key, acks and expiry exactly as the table does, and survive a reopen', async () => {
    const path = join(dir, `hints-${files++}.db`)
    const e = open(path)
    await e.putCluster(singleNodeCluster())
    await e.putHints('n2', [hint('a', '1'), hint('b', '2'), hint('c', '3')])
    await e.putHints('n3', [hint('a', '1')])
    expect(Object.fromEntries(e.hintsPending)).toEqual({ n2: 3, n3: 1 })
    // The same key again merges into its hint: no new key pending.
    await e.putHints('n2', [hint('a', 'again')])
    expect(Object.fromEntries(e.hintsPending)).toEqual(await targets(e))
    expect(e.hintsPending.get('n2')).toBe(3)

    const listed = await e.listHints('n2', 10, 0)
    expect(
      await e.deleteHints(
        'n2',
        listed.slice(0, 2).map((h) => ({ id: h.id, seq: h.seq })),
      ),
    ).toBe(2)
    expect(Object.fromEntries(e.hintsPending)).toEqual({ n2: 1, n3: 1 })

    // Older than the age limit: the next listing drops them, from every target.
    clockMs += 120_000
    await e.putHints('n3', [hint('fresh', 'v')])
    await e.listHints('n2', 10, 0)
    expect(Object.fromEntries(e.hintsPending)).toEqual({ n3: 1 })
    expect(Object.fromEntries(e.hintsPending)).toEqual(await targets(e))
    e.close()

    const reopened = open(path)
    expect(Object.fromEntries(reopened.hintsPending)).toEqual({ n3: 1 })
  })

  it("sizes SQLite's page cache and mapping as asked, with no mapping by default (mapped pages count in a node's resident memory)", () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvorum-memory-'))
    const db = new Database(join(dir, 'kv.db'))
    try {
      applySchema(db, 'normal')
      expect(db.pragma('cache_size', { simple: true })).toBe(-32 * 1024)
      expect(db.pragma('mmap_size', { simple: true })).toBe(0)
      applySchema(db, 'normal', { pageCacheMiB: 8, mmapMiB: 16 })
      expect(db.pragma('cache_size', { simple: true })).toBe(-8 * 1024)
      expect(db.pragma('mmap_size', { simple: true })).toBe(16 * 1024 * 1024)
    } finally {
      db.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('a rolled-back transaction changes nothing', () => {
    const db = new Database(':memory:')
    try {
      applySchema(db, 'normal')
      const hints = new Hints(db)
      db.transaction(() => hints.add('n2', 'kv', utf8('k'), [], 1))()
      hints.commit()
      try {
        db.transaction(() => {
          hints.add('n2', 'kv', utf8('other'), [], 1)
          throw new Error('roll back')
        })()
      } catch {
        hints.rollback()
      }
      expect(Object.fromEntries(hints.pending)).toEqual({ n2: 1 })
    } finally {
      db.close()
    }
  })
})
