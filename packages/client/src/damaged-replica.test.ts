import { afterEach, describe, expect, it } from 'vitest'
import { Ring, utf8 } from '@kvorum/core'
import type { StorageEngine } from '@kvorum/storage'
import { type MemoryCluster, memoryCluster } from '../../../test/support/memory-cluster.js'

// A replica whose stored row of a key went bad (its checksum fails) while it runs: it must never
// answer for the key as if it held nothing, nor coordinate a write over what it lost.

let cluster: MemoryCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

/** The engine's own connection, reached for the test: what a bad sector under a row looks like to it. */
interface RawEngine {
  readonly db: {
    prepare(sql: string): { get(...params: unknown[]): unknown; run(...params: unknown[]): unknown }
  }
}

/** Flip one byte of the key's stored set (its checksum is left as it was). */
function damageRow(engine: StorageEngine, key: string): void {
  const { db } = engine as unknown as RawEngine
  const row = db.prepare('SELECT id, data FROM kv WHERE key = ?').get(utf8(key)) as { id: number; data: Uint8Array }
  const at = row.data.length - 3
  row.data[at] = (row.data[at] as number) ^ 0x20
  db.prepare('UPDATE kv SET data = ? WHERE id = ?').run(row.data, row.id)
}

/** Three nodes, n=3 r=2 w=2, whose caches keep one key (so a row is read from SQLite again once another key passed). */
async function cacheless(): Promise<MemoryCluster> {
  cluster = await memoryCluster({ engine: () => ({ cache: { maxKeys: 1 } }) })
  return cluster
}

function primariesOf(c: MemoryCluster, key: string): readonly string[] {
  const ring = new Ring(c.cluster)
  return ring.primaries(ring.partitionOf(utf8(key)), 3)
}

describe('a replica with a damaged row', () => {
  it('a blind put over a key whose row is damaged on its first primary keeps the acknowledged value beside the new one', async () => {
    const c = await cacheless()
    const [a] = primariesOf(c, 'cart')
    const engineA = c.engines.get(a as string) as StorageEngine
    const { kv } = await c.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('cart', 'v1', { w: 3 })
    // v1 was coordinated by the first primary, A; then other keys push it out of A's cache and its row goes bad.
    const [held] = await engineA.get('default', [utf8('cart')])
    expect(held?.ok && held.value.map((v) => v.dot.actor)).toEqual([engineA.incarnation])
    await s.put('other', 'x', { w: 3 })
    damageRow(engineA, 'cart')
    // Another writer, who never read the key, writes it, then writes again with the context that put returned.
    const { kv: other } = await c.client()
    const writer = other.store<string>('default', { codec: 'utf8' })
    const { context } = await writer.put('cart', 'v2')
    await writer.put('cart', 'v2 again', { context, w: 3 })
    // That context covers v2 only: v1, acknowledged before and never seen by this writer, is still a sibling.
    expect((await s.get('cart', { r: 3 })).values.sort()).toEqual(['v1', 'v2 again'])
  })

  it('a damaged tombstone row is refused, not read as missing: the deleted value does not come back through a replica that missed the delete', async () => {
    const c = await cacheless()
    const [a, b] = primariesOf(c, 'doomed')
    const engineA = c.engines.get(a as string) as StorageEngine
    const { kv, transport } = await c.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('doomed', 'v1', { w: 3 })
    // B misses the delete (w=2: A, the coordinator, and C; the hint for B stays parked on A, undelivered).
    transport.setReachable(b as string, false)
    const seen = await s.get('doomed')
    await s.delete('doomed', { context: seen.context })
    await s.put('other', 'x')
    // A's tombstone row goes bad on disk.
    damageRow(engineA, 'doomed')
    // A reader that reaches every node asks A and B first (r=2): A refuses, so C answers with the tombstone.
    const { kv: reader } = await c.client()
    const read = await reader.store<string>('default', { codec: 'utf8' }).get('doomed')
    expect(read.found).toBe(false)
    expect(engineA.corrupt.total).toBe(1)
  })
})
