import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { utf8 } from '@kvorum/core'
import { runCli } from '../cli/run-cli.js'
import { type ProcessCluster, startCluster } from '../support/process-cluster.js'
import { replicaSets } from '../support/replicas.js'

/**
 * Damage on a real node's disk: bytes flipped in stored values while it is
 * stopped, and a broken index page. After a restart nothing damaged is
 * served, `kvorum check` names the rows, and `kvorum repair` restores them
 * from the peers.
 */

let cluster: ProcessCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

const KEYS = Array.from({ length: 30 }, (_, i) => `k${i}`)
const expected = (key: string) => `the value of ${key}`
const dbOf = (c: ProcessCluster, id: string) => join(c.nodes.get(id)?.dir ?? '', 'kvorum.db')

/** SQLite's page size, from the file header (bytes 16-17). */
const pageSize = (file: Buffer) => file.readUInt16BE(16)

/**
 * Flip one byte inside each value where it lies in the stopped node's file,
 * as a bad sector would: SQLite keeps no page checksums, so the page stays
 * readable and only the row's own checksum can tell.
 */
function flipValueBytes(path: string, values: readonly string[]): void {
  const file = readFileSync(path)
  for (const value of values) {
    const at = file.indexOf(value)
    expect(at, `${value} is in ${path}`).toBeGreaterThan(0)
    expect(file.indexOf(value, at + 1), `${value} is once in ${path}`).toBe(-1)
    file[at + 4] = (file[at + 4] as number) ^ 0x01
  }
  writeFileSync(path, file)
}

/** Point every cell of the index page holding `key` past the page's end (an index leaf page is type 0x0a). */
function breakIndexPageOf(path: string, key: string): void {
  const file = readFileSync(path)
  const size = pageSize(file)
  for (let start = size; start < file.length; start += size) {
    const page = file.subarray(start, start + size)
    if (page[0] !== 0x0a || page.indexOf(key) < 0) continue
    // An 8-byte header holding the cell count at 3, then one 2-byte pointer per cell.
    for (let cell = 0; cell < page.readUInt16BE(3); cell++) page.writeUInt16BE(size - 1, 8 + 2 * cell)
    writeFileSync(path, file)
    return
  }
  throw new Error(`no index page of ${path} holds ${key}`)
}

/** What one node holds for a key, as text ('' for nothing). */
async function held(c: ProcessCluster, id: string, key: string): Promise<string> {
  const set = (await replicaSets([[id, c.replica(id)]], 'default', key)).get(id) ?? []
  return set.map((v) => (v.value ? Buffer.from(v.value).toString() : '(deleted)')).join('|')
}

describe('corruption on a real node’s disk', () => {
  it('flipped value bytes: reads return the right value, kvorum check names the rows, kvorum repair heals them', async () => {
    cluster = await startCluster()
    const c = cluster
    const kv = await c.connect()
    const s = kv.store<string>('default', { codec: 'utf8' })
    for (const key of KEYS) await s.put(key, expected(key))
    await c.stop('n1')
    flipValueBytes(dbOf(c, 'n1'), [expected('k7'), expected('k8')])
    await c.start('n1')
    const seeds = ['--seeds', c.seeds.join(','), '--token', c.token]

    const checked = await runCli(['check', ...seeds])
    expect(checked.code, checked.stderr).toBe(1)
    expect(checked.stdout).toMatch(/^n1 {2}quick_check ok, 30 rows checked, 2 damaged row\(s\), refused and marked for repair/m)
    expect(checked.stdout).toMatch(/row: store default partition \d+ key "k7": checksum mismatch/)
    expect(checked.stdout).toMatch(/row: store default partition \d+ key "k8": checksum mismatch/)
    expect(checked.stdout).toMatch(/^n2 {2}quick_check ok, 30 rows checked, no damaged rows/m)
    expect(c.nodes.get('n1')?.proc?.output()).toMatch(/damaged row \(checksum or decode failed\)/)

    // Nothing damaged is served, not even as missing: n1 refuses both keys, so a read needing all three replicas fails,
    // and a read needing two gets the right value from the others.
    expect((await c.replica('n1').get({ timeoutMs: 10_000 }, 'default', [utf8('k8')]))[0]).toMatchObject({ ok: false, error: { code: 'KV_DATA_CORRUPT' } })
    await expect(s.get('k7', { r: 3 })).rejects.toMatchObject({ code: 'KV_QUORUM_NOT_MET', message: expect.stringMatching(/n1: KV_DATA_CORRUPT/) })
    expect((await s.get('k7', { r: 2 })).values).toEqual([expected('k7')])

    const repaired = await runCli(['repair', ...seeds])
    expect(repaired.code, repaired.stderr + repaired.stdout).toBe(0)
    expect(await held(c, 'n1', 'k7')).toBe(expected('k7'))
    expect(await held(c, 'n1', 'k8')).toBe(expected('k8'))
    const clean = await runCli(['check', '--full', ...seeds])
    expect(clean.code, clean.stdout).toBe(0)
    expect(clean.stdout).toMatch(/^n1 {2}integrity_check ok, 30 rows checked, no damaged rows/m)
  }, 60_000)

  it('a broken index page is found at the restart and rebuilt: the node serves every key again', async () => {
    cluster = await startCluster()
    const c = cluster
    const kv = await c.connect()
    const s = kv.store<string>('default', { codec: 'utf8' })
    for (const key of KEYS) await s.put(key, expected(key))
    await c.stop('n2')
    breakIndexPageOf(dbOf(c, 'n2'), 'k17')
    await c.start('n2')
    expect(c.nodes.get('n2')?.proc?.output()).toMatch(/the database was damaged in its indexes: rebuilt them from the tables/)
    for (const key of KEYS) expect(await held(c, 'n2', key)).toBe(expected(key))
  }, 60_000)
})
