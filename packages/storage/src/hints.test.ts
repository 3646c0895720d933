import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { type SiblingSet, fromUtf8, utf8 } from '@kvorum/core'
import type { DamagedHintReport } from './engine.js'
import { coordinatePut, failed, ok, values } from './engine.case.js'
import { fileEngines } from './files.case.js'
import { hintSum } from './integrity.js'

// Hints kept on disk for another node: a damaged one is never delivered (its bytes are not what
// was written), and one that cannot be read never stops the others.

const { path: newPath, open, forget } = fileEngines('hints')

/** Change the stored set of the hint for `key` with `change`; with `resum`, store a matching checksum (a sound row another build wrote). */
function rewriteHint(path: string, key: string, change: (data: Buffer) => Buffer, resum = false): void {
  const db = new Database(path)
  const row = db.prepare('SELECT id, target, store, data FROM hints WHERE key = ?').get(utf8(key)) as {
    id: number
    target: string
    store: string
    data: Buffer
  }
  const data = change(row.data)
  db.prepare('UPDATE hints SET data = ? WHERE id = ?').run(data, row.id)
  if (resum) db.prepare('UPDATE hints SET sum = ? WHERE id = ?').run(hintSum(row.target, row.store, utf8(key), data), row.id)
  db.close()
}

/** Flip one byte near the end of a stored set (inside the last value). */
const flip = (data: Buffer) => {
  data[data.length - 3] = (data[data.length - 3] as number) ^ 0x20
  return data
}

/** An engine on a new file holding hints for n9 of keys a, b, c (each its own value), closed; and the sets hinted. */
async function hinted(): Promise<{ path: string; sets: Map<string, SiblingSet> }> {
  const src = await open(':memory:')
  const path = newPath()
  const holder = await open(path)
  const sets = new Map<string, SiblingSet>()
  for (const key of ['a', 'b', 'c']) {
    const set = ok((await coordinatePut(src, 'kv', [{ key: utf8(key), value: utf8(`good value of ${key}`), context: {}, timestamp: 1 }]))[0]).siblings
    sets.set(key, set)
    ok((await holder.putHints('n9', [{ store: 'kv', key: utf8(key), siblings: set }]))[0])
  }
  holder.close()
  forget(holder)
  return { path, sets }
}

describe('damaged hints', () => {
  it('a hint whose bytes changed on disk is never delivered: it is left out of the page, told, counted and dropped; the others are delivered', async () => {
    const { path } = await hinted()
    rewriteHint(path, 'b', flip)
    const told: DamagedHintReport[] = []
    const holder = await open(path, { onDamagedHint: (h) => told.push(h) })
    const page = await holder.listHints('n9', 10, 0)
    expect(page.map((h) => fromUtf8(h.key))).toEqual(['a', 'c'])
    expect(page.map((h) => values(h.siblings))).toEqual([['good value of a'], ['good value of c']])
    expect(told).toEqual([{ target: 'n9', store: 'kv', key: '"b"', reason: 'checksum mismatch', dropped: true }])
    expect(holder.stats.hintsDamaged).toBe(1)
    // Dropped, so it neither waits for a delivery that cannot happen nor blocks reaping: the backlog is the two sound hints.
    expect(await holder.hintTargets()).toEqual([expect.objectContaining({ target: 'n9', count: 2 })])
    expect((await holder.listHints('n9', 10, 0)).length).toBe(2)
    expect(told.length).toBe(1)
  })

  it('a new hint for a key whose kept hint is damaged replaces it', async () => {
    const { path, sets } = await hinted()
    rewriteHint(path, 'a', flip)
    const told: DamagedHintReport[] = []
    const holder = await open(path, { onDamagedHint: (h) => told.push(h) })
    const src = await open(':memory:')
    const newer = ok((await coordinatePut(src, 'kv', [{ key: utf8('a'), value: utf8('newer'), context: {}, timestamp: 2 }]))[0]).siblings
    ok((await holder.putHints('n9', [{ store: 'kv', key: utf8('a'), siblings: newer }]))[0])
    expect(told).toEqual([expect.objectContaining({ key: '"a"', reason: 'checksum mismatch' })])
    const page = await holder.listHints('n9', 10, 0)
    expect(page.map((h) => [fromUtf8(h.key), values(h.siblings)])).toEqual([
      ['a', ['newer']],
      ['b', values(sets.get('b') as SiblingSet)],
      ['c', values(sets.get('c') as SiblingSet)],
    ])
  })

  it('a hint that passes its checksum but does not decode (another build wrote it) never fails the page, is kept, and refuses a merge into it with KV_DATA_FORMAT', async () => {
    const { path, sets } = await hinted()
    rewriteHint(path, 'a', () => Buffer.from([0xff, 0xff, 0xff]), true)
    const told: DamagedHintReport[] = []
    const holder = await open(path, { onDamagedHint: (h) => told.push(h) })
    expect((await holder.listHints('n9', 10, 0)).map((h) => fromUtf8(h.key))).toEqual(['b', 'c'])
    expect(told).toEqual([expect.objectContaining({ key: '"a"', reason: expect.stringMatching(/^does not decode/), dropped: false })])
    expect(await holder.hintTargets()).toEqual([expect.objectContaining({ count: 3 })])
    const [refused] = await holder.putHints('n9', [{ store: 'kv', key: utf8('a'), siblings: sets.get('a') as SiblingSet }])
    expect(failed(refused)).toMatchObject({
      code: 'KV_DATA_FORMAT',
      message: expect.stringMatching(/hint kept for n9 of key "a" in store kv passes its checksum but does not decode/),
    })
    expect(await holder.hintTargets()).toEqual([expect.objectContaining({ count: 3 })])
  })
})
