import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type VersionVector, fromUtf8, setContext, utf8 } from '@kvorum/core'
import { StorageEngine } from './engine.js'
import { coordinatePut, failed, ok, singleNodeCluster, values } from './engine.case.js'

let dir = ''
let files = 0
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kvorum-disk-full-'))
})
afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

const QUOTA_BYTES = 1024 * 1024
/** Values big enough that a 1 MiB database holds a few dozen of them. */
const big = (tag: string) => utf8(tag.padEnd(32 * 1024, '.'))
const item = (key: string, value: Uint8Array | null, context: VersionVector = {}) => ({ key: utf8(key), value, context, timestamp: 1 })

describe('a node whose database quota is full', () => {
  const opened: StorageEngine[] = []
  afterEach(() => {
    for (const e of opened.splice(0)) e.close()
  })
  const open = async (path = join(dir, `full-${files++}.db`)) => {
    const changes: boolean[] = []
    const engine = new StorageEngine({ path, nodeId: 'n1', maxDbBytes: QUOTA_BYTES, onDiskFull: (full) => changes.push(full) })
    opened.push(engine)
    if (!(await engine.getCluster())) await engine.putCluster(singleNodeCluster())
    return { engine, changes, path }
  }
  /** Write 32 KiB values one batch at a time until the node refuses one; returns the keys stored, with their contexts. */
  const fill = async (engine: StorageEngine): Promise<[string, VersionVector][]> => {
    const stored: [string, VersionVector][] = []
    for (let i = 0; i < 200; i++) {
      const [res] = await coordinatePut(engine, 'kv', [item(`k${i}`, big(`v${i}`))])
      if (!res?.ok) {
        expect(failed(res).code).toBe('KV_DISK_FULL')
        return stored
      }
      stored.push([`k${i}`, setContext(res.value.siblings)])
    }
    throw new Error('a 1 MiB quota took 200 values of 32 KiB')
  }

  it('refuses writes with KV_DISK_FULL naming the node, still serves reads (those of the same batch too), and stores nothing of a refused batch', async () => {
    const { engine, changes } = await open()
    const stored = (await fill(engine)).map(([key]) => key)
    expect(stored.length).toBeGreaterThan(5)
    // The last write taken may pass the quota by what it adds (the check runs before a write, not inside it).
    expect(engine.databaseBytes).toBeLessThanOrEqual(QUOTA_BYTES + 64 * 1024)

    // Each write of the batch answers KV_DISK_FULL as an item, and the batch's read is served.
    const refused = await engine.batch('kv', {
      keys: [utf8(stored[1] as string)],
      coordinates: [item('new-a', big('a')), item(stored[0] as string, big('over')), item('new-b', big('b'))],
      merges: [],
    })
    for (const r of refused.coordinates)
      expect(failed(r)).toMatchObject({ code: 'KV_DISK_FULL', message: expect.stringMatching(/^node n1 is out of disk space.*--max-db-mib/) })
    expect(values(ok(refused.gets[0]))).toEqual([`v1`.padEnd(32 * 1024, '.')])
    // All or nothing: neither new key exists, and the overwritten one keeps its value.
    const read = await engine.get('kv', [utf8('new-a'), utf8('new-b'), utf8(stored[0] as string)])
    expect(read.map((r) => values(ok(r)))).toEqual([[], [], [`v0`.padEnd(32 * 1024, '.')]])
    expect(engine.disk.full).toBe(true)
    expect(engine.disk.refusals).toBeGreaterThanOrEqual(2)
    expect(changes).toEqual([true])
  })

  it('rolls a batch back whole when it runs out of room half-way (SQLite refuses the page past the hard cap)', async () => {
    const { engine, changes } = await open()
    // 70 values of 32 KiB pass the quota's check (the database is empty) but not its headroom (1 MiB over the quota).
    const keys = Array.from({ length: 70 }, (_, i) => `b${i}`)
    const refused = await coordinatePut(
      engine,
      'kv',
      keys.map((key) => item(key, big(key))),
    )
    expect(refused.map((r) => failed(r).code)).toEqual(keys.map(() => 'KV_DISK_FULL'))
    const read = await engine.get('kv', keys.map(utf8))
    expect(read.filter((r) => values(ok(r)).length > 0)).toEqual([])
    expect((await engine.health()).keys).toBe(0)
    // Room is left for a smaller write, at once.
    ok((await coordinatePut(engine, 'kv', [item('small', utf8('fits'))]))[0])
    expect(changes).toEqual([true, false])
  })

  it('takes writes again by itself once rows are deleted, and says so once', async () => {
    const { engine, changes } = await open()
    const stored = await fill(engine)
    // A delete shrinks the row to a tombstone: it needs no new page, so it is taken on a full node.
    for (const [key, context] of stored.slice(0, 6)) ok((await coordinatePut(engine, 'kv', [item(key, null, context)]))[0])
    ok((await coordinatePut(engine, 'kv', [item('after', big('after'))]))[0])
    expect(values(ok((await engine.get('kv', [utf8('after')]))[0]))).toEqual(['after'.padEnd(32 * 1024, '.')])
    expect(engine.disk.full).toBe(false)
    expect(changes).toEqual([true, false])
  })

  it('refuses hints with KV_DISK_FULL, still lists and delivers them, and closes and reopens cleanly', async () => {
    const { engine, path } = await open()
    const hinted = { store: 'kv', key: utf8('h0'), siblings: ok((await coordinatePut(engine, 'kv', [item('h0', big('hint'))]))[0]).siblings }
    ok((await engine.putHints('n2', [hinted]))[0])
    await fill(engine)
    await expect(engine.putHints('n3', [{ ...hinted, key: utf8('h1') }])).rejects.toMatchObject({ code: 'KV_DISK_FULL' })
    const listed = await engine.listHints('n2', 10, 0)
    expect(listed.map((h) => fromUtf8(h.key))).toEqual(['h0'])
    expect(
      await engine.deleteHints(
        'n2',
        listed.map((h) => ({ id: h.id, seq: h.seq })),
      ),
    ).toBe(1)
    const roots = await engine.merkleRoots('kv')
    // The leaves snapshot at close may find no room: the close still succeeds and the next open rebuilds.
    engine.close()
    opened.splice(0)
    const { engine: again } = await open(path)
    expect(await again.merkleRoots('kv')).toEqual(roots)
    expect(values(ok((await again.get('kv', [utf8('h0')]))[0]))).toEqual(['hint'.padEnd(32 * 1024, '.')])
  })
})
