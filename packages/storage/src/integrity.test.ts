import { mkdtempSync, openSync, readSync, rmSync, writeSync, closeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type KeySet, toHex, utf8 } from '@kvorum/core'
import { StorageEngine } from './engine.js'
import { coordinatePut, ok, partOf, singleNodeCluster, values } from './engine.case.js'
import type { CorruptRow } from './integrity.js'

let dir = ''
let files = 0
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kvorum-integrity-'))
})
afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

const KEYS = Array.from({ length: 10 }, (_, i) => `k${i}`)

/** Flip one byte in the middle of a key's stored set, as a bad sector or a stray write would, leaving its checksum as it was. */
function flipValueByte(path: string, key: string): void {
  const db = new Database(path)
  const row = db.prepare('SELECT id, data FROM kv WHERE key = ?').get(utf8(key)) as { id: number; data: Buffer }
  const at = row.data.length - 3
  row.data[at] = (row.data[at] as number) ^ 0x20
  db.prepare('UPDATE kv SET data = ? WHERE id = ?').run(row.data, row.id)
  db.close()
}

describe('damaged rows', () => {
  const opened: StorageEngine[] = []
  afterEach(() => {
    for (const e of opened.splice(0)) e.close()
  })
  const open = (path: string, told: CorruptRow[] = []) => {
    const engine = new StorageEngine({ path, nodeId: 'n1', onCorruptRow: (row) => told.push(row) })
    opened.push(engine)
    return engine
  }
  /** A closed database holding KEYS, with the sets and Merkle roots they had. */
  const stored = async () => {
    const path = join(dir, `rows-${files++}.db`)
    const engine = open(path)
    await engine.putCluster(singleNodeCluster())
    const sets = new Map<string, KeySet>()
    for (const key of KEYS) {
      const [res] = await coordinatePut(engine, 'kv', [{ key: utf8(key), value: utf8(`value of ${key}`), context: {}, timestamp: 1 }])
      sets.set(key, { key: utf8(key), siblings: ok(res).siblings })
    }
    const roots = toHex(await engine.merkleRoots('kv'))
    engine.close()
    opened.splice(0)
    return { path, sets, roots }
  }

  it('a row whose bytes changed on disk reads as missing, is reported once, drops out of scans, and a merge from a peer restores it', async () => {
    const { path, sets, roots } = await stored()
    flipValueByte(path, 'k3')
    const told: CorruptRow[] = []
    const engine = open(path, told)
    const [k3, k4] = await engine.get('kv', [utf8('k3'), utf8('k4')])
    expect(values(ok(k3))).toEqual([])
    expect(values(ok(k4))).toEqual(['value of k4'])
    await engine.get('kv', [utf8('k3')])
    expect(told).toEqual([expect.objectContaining({ store: 'kv', key: '"k3"', partition: partOf(utf8('k3')), reason: 'checksum mismatch' })])
    const scanned = await engine.scan('kv', { partition: partOf(utf8('k3')), limit: 100 })
    expect(scanned.items.map((it) => Buffer.from(it.key).toString())).not.toContain('k3')

    // The row was dropped: its Merkle leaf now differs from a healthy replica's, so anti-entropy finds the key.
    // Any write job runs after the queued drop.
    await engine.deleteHints('nobody', [])
    expect(toHex(await engine.merkleRoots('kv'))).not.toBe(roots)
    ok((await engine.mergePut('kv', [sets.get('k3') as KeySet]))[0])
    expect(values(ok((await engine.get('kv', [utf8('k3')]))[0]))).toEqual(['value of k3'])
    expect(toHex(await engine.merkleRoots('kv'))).toBe(roots)
  })

  it('a row damaged on disk is never the base of a write: a put over it stores a fresh set', async () => {
    const { path } = await stored()
    flipValueByte(path, 'k5')
    const engine = open(path)
    const [res] = await coordinatePut(engine, 'kv', [{ key: utf8('k5'), value: utf8('rewritten'), context: {}, timestamp: 2 }])
    expect(values(ok(res).siblings)).toEqual(['rewritten'])
    engine.close()
    opened.splice(0)
    expect(values(ok((await open(path).get('kv', [utf8('k5')]))[0]))).toEqual(['rewritten'])
  })

  it('the on-demand check reads every row, lists the damaged ones, and finds the pages sound', async () => {
    const { path } = await stored()
    flipValueByte(path, 'k1')
    flipValueByte(path, 'k8')
    const engine = open(path)
    const report = await engine.check()
    expect(report.rowsChecked).toBe(KEYS.length)
    expect(report.pages).toMatchObject({ kind: 'quick_check', ran: true, problems: [] })
    expect(report.corruptRows.map((r) => r.key).sort()).toEqual(['"k1"', '"k8"'])
    expect(report.corruptTotal).toBe(2)
    // Dropped before the answer: the table holds the eight sound rows, and the next check finds nothing new.
    const again = await engine.check({ full: true })
    expect(again).toMatchObject({ rowsChecked: KEYS.length - 2, corruptTotal: 0, sinceOpenTotal: 2 })
    expect(again.pages).toMatchObject({ kind: 'integrity_check', problems: [] })
  })
})

describe('a damaged database page', () => {
  /** Point every cell of the key index's root page past its end: SQLite's page checks see it, and lookups through it fail. */
  function breakIndexPage(path: string): void {
    const db = new Database(path, { readonly: true })
    const page = (db.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'kv_place'").get() as { rootpage: number }).rootpage
    const size = db.pragma('page_size', { simple: true }) as number
    db.close()
    const fd = openSync(path, 'r+')
    const bytes = Buffer.alloc(size)
    readSync(fd, bytes, 0, size, (page - 1) * size)
    // A leaf page: an 8-byte header holding the cell count, then one 2-byte pointer per cell.
    for (let cell = 0; cell < bytes.readUInt16BE(3); cell++) bytes.writeUInt16BE(size - 1, 8 + 2 * cell)
    writeSync(fd, bytes, 0, size, (page - 1) * size)
    closeSync(fd)
  }

  it('is found by the check at open; damage in an index is repaired there by rebuilding the indexes from the table', async () => {
    const path = join(dir, `pages-${files++}.db`)
    const first = new StorageEngine({ path, nodeId: 'n1' })
    await first.putCluster(singleNodeCluster())
    for (const key of KEYS) await coordinatePut(first, 'kv', [{ key: utf8(key), value: utf8(`value of ${key}`), context: {}, timestamp: 1 }])
    first.close()
    breakIndexPage(path)
    const engine = new StorageEngine({ path, nodeId: 'n1' })
    try {
      expect(engine.atOpen.ran).toBe(true)
      expect(engine.atOpen.problems).toEqual([expect.stringMatching(/Tree \d+ page \d+ cell \d+: Offset \d+ out of range/)])
      // Lookups through the broken index found nothing: REINDEX rebuilt it, and every key reads back.
      expect(engine.atOpen).toMatchObject({ reindexed: true, remaining: [] })
      const results = await engine.get('kv', KEYS.map(utf8))
      expect(results.map((r) => values(ok(r)))).toEqual(KEYS.map((k) => [`value of ${k}`]))
      expect((await engine.check({ full: true })).pages.problems).toEqual([])
      const bounded = new StorageEngine({ path: join(dir, 'pages-bound.db'), nodeId: 'n1', openCheckMaxBytes: 0 })
      bounded.close()
      const again = new StorageEngine({ path, nodeId: 'n1', openCheckMaxBytes: 4096 })
      expect(again.atOpen).toMatchObject({ ran: false, skipped: expect.stringMatching(/over the open check's bound of 4096/) })
      again.close()
    } finally {
      engine.close()
    }
  })
})
