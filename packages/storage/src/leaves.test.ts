import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { toHex, utf8 } from '@kvorum/core'
import type { StorageEngine } from './engine.js'
import { put } from './engine.case.js'
import { fileEngines } from './files.case.js'

// The Merkle leaves live in memory; the rows keep each key's digest. These
// tests hold the leaves to the rows across clean closes, crashes and old files.

const { path: newPath, open, forget } = fileEngines('leaves')

/** Close the database under the engine without its clean close, as a killed process would leave it. */
function crash(e: StorageEngine): void {
  ;(e as unknown as { db: Database.Database }).db.close()
  forget(e)
}

/** A store with writes, overwrites, siblings and a delete, and the roots it ends with. */
async function filled(path: string): Promise<{ e: StorageEngine; roots: string; branches: string }> {
  const e = await open(path)
  for (let i = 0; i < 200; i++) await put(e, 'kv', `k${i}`, `v${i}`)
  for (let i = 0; i < 50; i++) await put(e, 'kv', `k${i}`, `again${i}`)
  const [del] = await e.get('kv', [utf8('k7')])
  if (!del?.ok) throw new Error('no k7')
  await put(e, 'kv', 'k7', null, Object.fromEntries(del.value.map((v) => [v.dot.actor, v.dot.counter])))
  return { e, roots: toHex(await e.merkleRoots('kv')), branches: toHex(await e.merkleBranches('kv', 3)) }
}

describe('Merkle leaves across restarts', () => {
  it('after a clean close the next open loads them without a rebuild', async () => {
    const path = newPath()
    const { e, roots, branches } = await filled(path)
    e.close()
    const again = await open(path)
    expect(again.leavesOpened).toMatchObject({ rebuilt: false, keys: 0 })
    expect(toHex(await again.merkleRoots('kv'))).toBe(roots)
    expect(toHex(await again.merkleBranches('kv', 3))).toBe(branches)
  })

  it('after a crash the next open rebuilds them from the rows, to the same roots', async () => {
    const path = newPath()
    const { e, roots, branches } = await filled(path)
    crash(e)
    const again = await open(path)
    expect(again.leavesOpened).toMatchObject({ rebuilt: true, keys: 200 })
    expect(toHex(await again.merkleRoots('kv'))).toBe(roots)
    expect(toHex(await again.merkleBranches('kv', 3))).toBe(branches)
    // Writes after the rebuild move the leaves as before, and a crash after them rebuilds the same again.
    await put(again, 'kv', 'later', 'x')
    const moved = toHex(await again.merkleRoots('kv'))
    expect(moved).not.toBe(roots)
    crash(again)
    expect(toHex(await (await open(path)).merkleRoots('kv'))).toBe(moved)
  })

  it('a crash after a clean close and reopen is not mistaken for a clean close', async () => {
    const path = newPath()
    const { e } = await filled(path)
    e.close()
    const second = await open(path)
    await put(second, 'kv', 'k1', 'changed-after-reopen')
    const roots = toHex(await second.merkleRoots('kv'))
    crash(second)
    const third = await open(path)
    expect(third.leavesOpened.rebuilt).toBe(true)
    expect(toHex(await third.merkleRoots('kv'))).toBe(roots)
  })

  it('a database from before rows kept digests gets them, and its leaves, at the first open', async () => {
    const path = newPath()
    const { e, roots } = await filled(path)
    e.close()
    const raw = new Database(path)
    raw.exec("UPDATE kv SET digest = NULL; DELETE FROM leaves; DELETE FROM meta WHERE k = 'leaves'")
    raw.close()
    const again = await open(path)
    expect(again.leavesOpened).toMatchObject({ rebuilt: true, keys: 200 })
    expect(toHex(await again.merkleRoots('kv'))).toBe(roots)
    again.close()
    const check = new Database(path, { readonly: true })
    expect((check.prepare('SELECT count(*) AS n FROM kv WHERE digest IS NULL').get() as { n: number }).n).toBe(0)
    check.close()
  })
})
