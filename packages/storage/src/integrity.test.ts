import { mkdtempSync, openSync, readSync, rmSync, writeSync, closeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type KeySet, covers, toHex, utf8, withDot } from '@kvorum/core'
import { StorageEngine } from './engine.js'
import { coordinatePut, failed, ok, partOf, singleNodeCluster, values } from './engine.case.js'
import { type CorruptRow, rowSum } from './integrity.js'

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

  it('a row whose bytes changed on disk answers KV_DATA_CORRUPT (never missing), is reported once, drops out of scans and leaves, stays damaged across a restart, and a merge from a peer restores it', async () => {
    const { path, sets, roots } = await stored()
    flipValueByte(path, 'k3')
    const told: CorruptRow[] = []
    let engine = open(path, told)
    const [k3, k4] = await engine.get('kv', [utf8('k3'), utf8('k4')])
    // An empty answer would count toward a read quorum: the key is refused, so the SDK asks another replica.
    expect(failed(k3)).toMatchObject({
      code: 'KV_DATA_CORRUPT',
      message: expect.stringMatching(/key "k3" of store kv: its stored row is damaged \(checksum mismatch\)/),
    })
    expect(values(ok(k4))).toEqual(['value of k4'])
    expect(failed((await engine.batch('kv', { keys: [utf8('k3')], coordinates: [], merges: [] })).gets[0]).code).toBe('KV_DATA_CORRUPT')
    expect(told).toEqual([expect.objectContaining({ store: 'kv', key: '"k3"', partition: partOf(utf8('k3')), reason: 'checksum mismatch' })])
    const scanned = await engine.scan('kv', { partition: partOf(utf8('k3')), limit: 100 })
    expect(scanned.items.map((it) => Buffer.from(it.key).toString())).not.toContain('k3')

    // The row counts as empty in its Merkle leaf, which now differs from a healthy replica's, so anti-entropy finds the key.
    // Any write job runs after the queued mark.
    await engine.deleteHints('nobody', [])
    const marked = toHex(await engine.merkleRoots('kv'))
    expect(marked).not.toBe(roots)
    // The damage is kept, not dropped: after a restart (leaves from the snapshot, or rebuilt after a crash) the key is still refused and still differs.
    engine.close()
    opened.splice(0)
    engine = open(path)
    expect(failed((await engine.get('kv', [utf8('k3')]))[0]).code).toBe('KV_DATA_CORRUPT')
    expect(toHex(await engine.merkleRoots('kv'))).toBe(marked)
    engine.abandon()
    opened.splice(0)
    engine = open(path)
    expect(engine.leavesOpened.rebuilt).toBe(true)
    expect(toHex(await engine.merkleRoots('kv'))).toBe(marked)
    expect(failed((await engine.get('kv', [utf8('k3')]))[0]).code).toBe('KV_DATA_CORRUPT')

    ok((await engine.mergePut('kv', [sets.get('k3') as KeySet]))[0])
    expect(values(ok((await engine.get('kv', [utf8('k3')]))[0]))).toEqual(['value of k3'])
    expect(toHex(await engine.merkleRoots('kv'))).toBe(roots)
  })

  it('a row damaged on disk is never the base of a write: a coordinate over it is refused, a merge replaces it', async () => {
    const { path } = await stored()
    flipValueByte(path, 'k5')
    const engine = open(path)
    const [refused] = await coordinatePut(engine, 'kv', [{ key: utf8('k5'), value: utf8('rewritten'), context: {}, timestamp: 2 }])
    expect(failed(refused).code).toBe('KV_DATA_CORRUPT')
    const [other] = await coordinatePut(engine, 'kv', [{ key: utf8('elsewhere'), value: utf8('six'), context: {}, timestamp: 2 }])
    const incoming = ok(other).siblings
    ok((await engine.mergePut('kv', [{ key: utf8('k5'), siblings: incoming }]))[0])
    const [res] = await coordinatePut(engine, 'kv', [{ key: utf8('k5'), value: utf8('rewritten'), context: {}, timestamp: 3 }])
    expect(values(ok(res).siblings)).toEqual(['rewritten', 'six'])
    engine.close()
    opened.splice(0)
    expect(values(ok((await open(path).get('kv', [utf8('k5')]))[0]))).toEqual(['rewritten', 'six'])
  })

  it('the on-demand check reads every row, lists the damaged ones (marked for repair, not dropped), and finds the pages sound', async () => {
    const { path, sets, roots } = await stored()
    flipValueByte(path, 'k1')
    flipValueByte(path, 'k8')
    const engine = open(path)
    const report = await engine.check()
    expect(report.rowsChecked).toBe(KEYS.length)
    expect(report.pages).toMatchObject({ kind: 'quick_check', ran: true, problems: [] })
    expect(report.corruptRows.map((r) => r.key).sort()).toEqual(['"k1"', '"k8"'])
    expect(report.corruptTotal).toBe(2)
    // Marked before the answer: the leaves count the two keys as empty, and the rows stay (the next check finds them again).
    expect(toHex(await engine.merkleRoots('kv'))).not.toBe(roots)
    const again = await engine.check({ full: true })
    expect(again).toMatchObject({ rowsChecked: KEYS.length, corruptTotal: 2, sinceOpenTotal: 2 })
    expect(again.pages).toMatchObject({ kind: 'integrity_check', problems: [] })
    // Merges from a peer restore them: the next check finds nothing, and the roots are the healthy ones.
    ok((await engine.mergePut('kv', [sets.get('k1') as KeySet, sets.get('k8') as KeySet]))[0])
    expect(await engine.check()).toMatchObject({ rowsChecked: KEYS.length, corruptTotal: 0 })
    expect(toHex(await engine.merkleRoots('kv'))).toBe(roots)
  })

  it('a row that passes its checksum but does not decode (another build wrote it) is reported, never dropped or replaced: writes of its key are refused with KV_DATA_FORMAT', async () => {
    const { path, sets, roots } = await stored()
    const foreign = Buffer.from([0xff, 0xfe, 0xfd, 0xfc])
    const db = new Database(path)
    db.prepare('UPDATE kv SET data = ?, sum = ? WHERE key = ?').run(foreign, rowSum(utf8('k2'), foreign), utf8('k2'))
    db.close()
    const engine = open(path)
    const report = await engine.check()
    expect(report.corruptRows).toEqual([expect.objectContaining({ key: '"k2"', reason: expect.stringMatching(/^passes its checksum but does not decode/) })])
    const [coordinated] = await coordinatePut(engine, 'kv', [{ key: utf8('k2'), value: utf8('over it'), context: {}, timestamp: 2 }])
    expect(failed(coordinated)).toMatchObject({
      code: 'KV_DATA_FORMAT',
      message: expect.stringMatching(/key "k2" of store kv: its stored row passes its checksum but does not decode/),
    })
    expect(failed((await engine.mergePut('kv', [sets.get('k2') as KeySet]))[0]).code).toBe('KV_DATA_FORMAT')
    // Not marked either: the leaves still count it, so repair does not replace it from a peer.
    expect(toHex(await engine.merkleRoots('kv'))).toBe(roots)
    engine.close()
    opened.splice(0)
    const left = new Database(path)
    expect(left.prepare('SELECT data FROM kv WHERE key = ?').get(utf8('k2'))).toEqual({ data: foreign })
    left.close()
  })

  it('replacing a damaged row recounts its leaf inside the transaction: a read failing after the commit cannot run the group again (one put, one version)', async () => {
    const { path, sets } = await stored()
    flipValueByte(path, 'k3')
    const engine = open(path)
    // From here on a read of the segment's digests fails outside a transaction (an I/O error after the commit).
    const inside = engine as unknown as { db: { inTransaction: boolean }; leaves: { segmentDigests: { raw(): unknown } } }
    const statement = inside.leaves.segmentDigests
    inside.leaves.segmentDigests = {
      raw: () => {
        if (!inside.db.inTransaction) throw new Error('disk I/O error')
        return statement.raw()
      },
    }
    // One group: the merge that replaces the damaged row, and a put of another key.
    const [merged, put] = await Promise.all([
      engine.mergePut('kv', [sets.get('k3') as KeySet]),
      coordinatePut(engine, 'kv', [{ key: utf8('fresh'), value: utf8('once'), context: {}, timestamp: 2 }]),
    ])
    ok(merged[0])
    ok(put[0])
    expect(values(ok((await engine.get('kv', [utf8('fresh')]))[0]))).toEqual(['once'])
    expect(values(ok((await engine.get('kv', [utf8('k3')]))[0]))).toEqual(['value of k3'])
  })

  it('the check gives sound rows written before sums were kept their sum, so damage to them later is found', async () => {
    const { path } = await stored()
    const db = new Database(path)
    db.prepare('UPDATE kv SET sum = NULL WHERE key IN (?, ?)').run(utf8('k4'), utf8('k6'))
    db.close()
    const engine = open(path)
    expect(await engine.check()).toMatchObject({ rowsChecked: KEYS.length, rowsSummed: 2, corruptTotal: 0 })
    expect(await engine.check()).toMatchObject({ rowsSummed: 0 })
    flipValueByte(path, 'k4')
    expect(failed((await engine.get('kv', [utf8('k4')]))[0]).code).toBe('KV_DATA_CORRUPT')
  })

  it('the check puts right a sound row whose stored Merkle digest is wrong, so its leaf agrees with the peers again', async () => {
    const { path, roots } = await stored()
    const db = new Database(path)
    db.prepare('UPDATE kv SET digest = ? WHERE key = ?').run(Buffer.alloc(8, 7), utf8('k5'))
    // As after a crash: the leaves are rebuilt from the rows' digests at the next open.
    db.prepare("UPDATE meta SET v = 'open' WHERE k = 'leaves'").run()
    db.close()
    const engine = open(path)
    expect(toHex(await engine.merkleRoots('kv'))).not.toBe(roots)
    const report = await engine.check()
    expect(report.corruptRows).toEqual([expect.objectContaining({ key: '"k5"', reason: 'Merkle digest mismatch' })])
    expect(toHex(await engine.merkleRoots('kv'))).toBe(roots)
    expect(values(ok((await engine.get('kv', [utf8('k5')]))[0]))).toEqual(['value of k5'])
    expect(await engine.check()).toMatchObject({ corruptTotal: 0 })
  })

  it('a damaged row gives its node a new actor: a clock it hands out later never covers a version it lost but a peer holds', async () => {
    // Node A runs on a file with a one-key cache, so k's row is read from disk again once other keys pass through.
    const pathA = join(dir, `actor-${files++}.db`)
    const a = new StorageEngine({ path: pathA, nodeId: 'n1', cache: { maxKeys: 1 } })
    opened.push(a)
    await a.putCluster(singleNodeCluster())
    const b = new StorageEngine({ path: ':memory:', nodeId: 'n1' })
    opened.push(b)
    await b.putCluster(singleNodeCluster())
    const v1 = ok((await coordinatePut(a, 'kv', [{ key: utf8('k'), value: utf8('v1'), context: {}, timestamp: 1 }]))[0])
    // B holds the acknowledged v1, as a healthy replica would.
    ok((await b.mergePut('kv', [{ key: utf8('k'), siblings: v1.siblings }]))[0])
    for (const other of ['o1', 'o2']) await coordinatePut(a, 'kv', [{ key: utf8(other), value: utf8('x'), context: {}, timestamp: 1 }])
    // A sector under k's row goes bad while A runs.
    flipValueByte(pathA, 'k')
    const before = a.incarnation
    expect(failed((await a.get('kv', [utf8('k')]))[0]).code).toBe('KV_DATA_CORRUPT')
    expect(failed((await coordinatePut(a, 'kv', [{ key: utf8('k'), value: utf8('v2'), context: {}, timestamp: 2 }]))[0]).code).toBe('KV_DATA_CORRUPT')
    expect(a.incarnation).not.toBe(before)
    // A merge brings back only part of the key (a replica that lacks v1), and A coordinates a blind write over it.
    const v0 = ok((await coordinatePut(b, 'kv', [{ key: utf8('elsewhere'), value: utf8('v0'), context: {}, timestamp: 1 }]))[0])
    ok((await a.mergePut('kv', [{ key: utf8('k'), siblings: v0.siblings }]))[0])
    const v2 = ok((await coordinatePut(a, 'kv', [{ key: utf8('k'), value: utf8('v2'), context: {}, timestamp: 2 }]))[0])
    // The clock the SDK hands the v2 writer (ownClock: its context with the new dot).
    const handedBack = withDot({}, v2.dot)
    expect(covers(handedBack, v1.dot)).toBe(false)
    // The v2 writer writes again with that clock, coordinated by B: v1 survives.
    ok((await b.mergePut('kv', [{ key: utf8('k'), siblings: v2.siblings }]))[0])
    const v3 = ok((await coordinatePut(b, 'kv', [{ key: utf8('k'), value: utf8('v3'), context: handedBack, timestamp: 3 }]))[0])
    expect(values(v3.siblings)).toEqual(['v0', 'v1', 'v3'])
  })

  it('a merge that finds the row damaged (no read found it first) also gives the node a new actor before it coordinates there again', async () => {
    const pathA = join(dir, `actor-${files++}.db`)
    const a = new StorageEngine({ path: pathA, nodeId: 'n1', cache: { maxKeys: 1 } })
    opened.push(a)
    await a.putCluster(singleNodeCluster())
    const v1 = ok((await coordinatePut(a, 'kv', [{ key: utf8('k'), value: utf8('v1'), context: {}, timestamp: 1 }]))[0])
    await coordinatePut(a, 'kv', [{ key: utf8('other'), value: utf8('x'), context: {}, timestamp: 1 }])
    flipValueByte(pathA, 'k')
    const before = a.incarnation
    // A replica lacking v1 sends its set, and a blind write is coordinated at A in the same group.
    const b = new StorageEngine({ path: ':memory:', nodeId: 'n1' })
    opened.push(b)
    await b.putCluster(singleNodeCluster())
    const v0 = ok((await coordinatePut(b, 'kv', [{ key: utf8('elsewhere'), value: utf8('v0'), context: {}, timestamp: 1 }]))[0])
    const [merged, put] = await Promise.all([
      a.mergePut('kv', [{ key: utf8('k'), siblings: v0.siblings }]),
      coordinatePut(a, 'kv', [{ key: utf8('k'), value: utf8('v2'), context: {}, timestamp: 2 }]),
    ])
    ok(merged[0])
    const v2 = ok(put[0])
    expect(a.incarnation).not.toBe(before)
    expect(covers(withDot({}, v2.dot), v1.dot)).toBe(false)
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
