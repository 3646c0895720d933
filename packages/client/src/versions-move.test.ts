import { type ClusterDef, type KeySet, Placement, type Version, advance, isGone, planChange, utf8 } from '@kvorum/core'
import { afterEach, describe, expect, it } from 'vitest'
import { type MemoryCluster, memoryCluster } from '../../../test/support/memory-cluster.js'

let clusters: MemoryCluster[] = []
afterEach(async () => {
  for (const c of clusters) await c.close()
  clusters = []
})

const store = { name: 'default', n: 3 }

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of items) out.push(item)
  return out
}

/** Install the plan's definitions one by one until the move reaches `stage`. */
async function moveTo(c: MemoryCluster, plan: ReturnType<typeof planChange>, stage: 'write-both' | 'read-new'): Promise<ClusterDef> {
  let def: ClusterDef = c.cluster
  for (let i = 0; i < 10 && def.move?.stage !== stage; i++) {
    const next = advance(def, plan)
    if (!next) throw new Error(`assertion failed: the plan ended before ${stage}`)
    def = next
    await c.install(def)
  }
  if (def.move?.stage !== stage) throw new Error(`assertion failed: the plan did not reach ${stage}`)
  return def
}

/** A key of a partition that n4 leaves in this move: n4 is an old primary (O), not a new one (N). */
function keyLeftBy(def: ClusterDef, leaver: string): string {
  const placement = new Placement(def)
  for (let i = 0; i < 10_000; i++) {
    const key = `k${i}`
    const q = placement.ring.partitionOf(utf8(key))
    if (placement.moving(q, store) && placement.writers(q, store).includes(leaver) && !placement.readers(q, store).includes(leaver)) return key
  }
  throw new Error(`assertion failed: no key of a partition ${leaver} leaves`)
}

describe('store.versions() during a membership move', () => {
  it('reads the old primaries too in read-new: a tombstone a leaving coordinator holds alone is exported, so a restore elsewhere keeps the key deleted', async () => {
    const c = await memoryCluster({ nodes: 4, partitions: 8, stores: [{ name: 'default', n: 3, r: 2, w: 2 }] })
    clusters.push(c)
    const def = await moveTo(c, planChange(c.cluster, { remove: ['n4'] }), 'read-new')
    const key = keyLeftBy(def, 'n4')
    const { kv } = await c.client()
    expect(kv.cluster.move?.stage).toBe('read-new')
    await kv.store<string>('default', { codec: 'utf8' }).put(key, 'v1', { w: 3 })
    const [held] = (await c.engines.get('n4')?.get('default', [utf8(key)])) ?? []
    const v1 = (held?.ok ? held.value[0] : undefined) as Version
    // Acknowledged in write-both after the copy pass: n4 (an old primary) coordinated the delete and
    // hints stood in for the new primaries, not delivered yet. In read-new only n4's rows hold it.
    const tombstone: Version = { dot: { actor: 'del', counter: 1 }, context: { [v1.dot.actor]: v1.dot.counter }, timestamp: 2, value: null }
    await c.engines.get('n4')?.mergePut('default', [{ key: utf8(key), siblings: [tombstone] }])
    const exported: KeySet[] = await all(kv.store('default').versions())
    const set = exported.find((e) => Buffer.from(e.key).toString('utf8') === key)?.siblings ?? []
    expect(isGone(set, Date.now())).toBe(true)
    // Restored into another cluster (a migration), the key stays deleted.
    const other = await memoryCluster()
    clusters.push(other)
    const { kv: target } = await other.client()
    const restored = target.store<string>('default', { codec: 'utf8' })
    expect((await restored.restore(exported)).every((r) => r.ok)).toBe(true)
    expect((await restored.get(key, { r: 3 })).found).toBe(false)
  })

  it('reads only the old primaries in write-both (they hold every write then): a new primary that cannot scan does not fail the export', async () => {
    const c = await memoryCluster({ nodes: 4, partitions: 8, stores: [{ name: 'default', n: 3, r: 2, w: 2 }] })
    clusters.push(c)
    const def = await moveTo(c, planChange(c.cluster, { remove: ['n4'] }), 'write-both')
    const placement = new Placement(def)
    // A partition with a new primary that is not an old one (in write-both the readers are the old primaries).
    const q = Array.from({ length: 8 }, (_, p) => p).find((p) => placement.writers(p, store).some((id) => !placement.readers(p, store).includes(id))) as number
    const joiner = placement.writers(q, store).find((id) => !placement.readers(q, store).includes(id)) as string
    const key = Array.from({ length: 10_000 }, (_, i) => `k${i}`).find((k) => placement.ring.partitionOf(utf8(k)) === q) as string
    const { kv, transport } = await c.client()
    await kv.store<string>('default', { codec: 'utf8' }).put(key, 'v1', { w: 3 })
    // The new primary of the moving partition fails every scan of it (still copying, or down for it).
    transport.intercept = (node, op, _opts, call, args) => {
      if (node === joiner && op === 'scan' && (args[1] as { partition: number }).partition === q) return Promise.reject(new Error('planted: not ready'))
      return call()
    }
    const exported: KeySet[] = await all(kv.store('default').versions())
    expect(exported.map((e) => Buffer.from(e.key).toString('utf8'))).toContain(key)
  })
})
