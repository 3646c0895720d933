import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { type ClusterDef, partitionOfHash, keyHash, realTime, storeDef, utf8 } from '@kvorum/core'
import { StorageEngine } from './engine.js'
import { Q, put, singleNodeCluster } from './engine.case.js'

const HOUR = 3_600_000
const dirs: string[] = []
const engines: StorageEngine[] = []
afterEach(() => {
  for (const e of engines.splice(0)) e.close()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

/** A one-node cluster whose store `kv` keeps tombstones an hour. */
function cluster(version: number, placement?: number[]): ClusterDef {
  const base = singleNodeCluster(version)
  return { ...base, stores: [storeDef({ name: 'kv', n: 1, r: 1, w: 1, tombstoneGraceMs: HOUR })], ...(placement ? { placement } : {}) }
}

function open(path: string, clock: { now: number }): StorageEngine {
  const e = new StorageEngine({ path, nodeId: 'n1', time: { ...realTime, now: () => clock.now } })
  engines.push(e)
  return e
}

describe('no tombstone is reaped in a partition that moved within the grace period (MEMBERSHIP rule 2)', () => {
  it('refuses to reap in a partition whose placement changed until the grace period has passed since, across a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvorum-moved-'))
    dirs.push(dir)
    const path = join(dir, 'n1.db')
    const clock = { now: 1_000_000 }
    const e = open(path, clock)
    await e.putCluster(cluster(1))
    const moving = 'moved-key'
    const still = 'still-key'
    const q = partitionOfHash(keyHash(utf8(moving)), Q)
    // A key in another partition, which did not move.
    let other = still
    for (let i = 0; partitionOfHash(keyHash(utf8(other)), Q) === q; i++) other = `${still}-${i}`
    const tomb = await put(e, 'kv', moving, null)
    const otherTomb = await put(e, 'kv', other, null)
    // The tombstones are a grace period old (the node counts it on its own clock) when the partition moves.
    clock.now += HOUR
    // A move changed q's replica sets at version 2 (and ended at 3), now.
    const placement = new Array<number>(Q).fill(0)
    placement[q] = 2
    await e.putCluster(cluster(2, placement))
    await e.putCluster(cluster(3, placement))
    clock.now += HOUR / 2
    expect(await e.reap('kv', [{ key: utf8(moving), siblings: tomb }])).toBe(0)
    expect(await e.reap('kv', [{ key: utf8(other), siblings: otherTomb }])).toBe(1)
    // The node restarts: the time of the move is on disk.
    e.close()
    engines.splice(engines.indexOf(e), 1)
    const again = open(path, clock)
    expect(await again.reap('kv', [{ key: utf8(moving), siblings: tomb }])).toBe(0)
    clock.now += HOUR / 2
    expect(await again.reap('kv', [{ key: utf8(moving), siblings: tomb }])).toBe(1)
  })
})

describe("the tombstone grace counts on the node's own clock", () => {
  it('refuses to reap a tombstone younger than the grace here, though a repairer whose clock runs ahead listed it as old', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvorum-grace-'))
    dirs.push(dir)
    const clock = { now: 1_000_000 }
    const e = open(join(dir, 'n1.db'), clock)
    await e.putCluster(cluster(1))
    const tomb = await put(e, 'kv', 'young', null)
    // A repairer whose clock runs a grace period (and a minute) ahead asks for tombstones older than its now minus the grace.
    const beforeMs = clock.now + HOUR + 60_000 - HOUR
    const listed = (await Promise.all(Array.from({ length: Q }, (_, partition) => e.listTombstones('kv', { partition, beforeMs, limit: 10 })))).flat()
    expect(listed).toHaveLength(1)
    expect(await e.reap('kv', listed)).toBe(0)
    clock.now += HOUR
    expect(await e.reap('kv', [{ key: utf8('young'), siblings: tomb }])).toBe(1)
  })
})
