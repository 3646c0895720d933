import { afterEach, describe, expect, it } from 'vitest'
import { type ClusterDef, Ring, abortMove, advance, initialAssignment, planReplicaChange, storeDef } from '@kvorum/core'
import { StorageEngine } from '@kvorum/storage'
import { type MemoryCluster, memoryCluster } from '../../../test/support/memory-cluster.js'
import { writers } from '../../../test/support/writers.js'

let cluster: MemoryCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

const TIMEOUT_MS = 300
const FAST = { drainMs: TIMEOUT_MS + 50, cleanupGraceMs: 30, barrierTimeoutMs: 5000 }

/** How many of each key's replicas under `final` hold it, read from the engines themselves. */
async function holders(c: MemoryCluster, final: ClusterDef, key: string): Promise<{ held: number; of: number }> {
  const ring = new Ring(final)
  const n = final.stores[0]?.n ?? 0
  const bytes = new TextEncoder().encode(key)
  let held = 0
  for (const id of ring.primaries(ring.partitionOf(bytes), n)) {
    const [res] = (await c.engines.get(id)?.get('default', [bytes])) ?? []
    if (res?.ok && res.value.some((v) => v.value !== null)) held++
  }
  return { held, of: n }
}

/** Keys rows per engine (any partition). */
async function rowsOn(c: MemoryCluster, id: string, q: number): Promise<number> {
  let rows = 0
  for (let p = 0; p < q; p++) rows += (await c.engines.get(id)?.scan('default', { partition: p, limit: 10_000 }))?.items.length ?? 0
  return rows
}

describe("a store's n changes through a rebalance", () => {
  it('2 → 3 under writers: every acknowledged write ends on at least w replicas of the new n, and reads keep working', async () => {
    cluster = await memoryCluster({ nodes: 4, partitions: 32, stores: [{ name: 'default', n: 2, r: 1, w: 2 }] })
    const c = cluster
    const { kv: driver } = await c.client()
    const seed = driver.store('default', { codec: 'utf8' })
    for (let i = 0; i < 60; i++) await seed.put(`k${i}`, `v${i}`)
    const ends = [await c.client({ timeoutMs: TIMEOUT_MS }), await c.client({ timeoutMs: TIMEOUT_MS })]
    const load = writers(ends.map((e) => e.kv))
    const plan = driver.planReplicaChange('default', 3)
    expect(plan.movement.replicaPartitionsMoved).toBe(32)
    const stages: string[] = []
    const final = await driver.rebalance(plan, { ...FAST, onProgress: (p) => stages.push(`${p.stage}:${p.phase}`) })
    await load.stop()
    await Promise.all(ends.map((e) => e.kv.close()))
    expect(stages).toContain('write-both:copy')
    expect(final.move).toBeUndefined()
    expect(final.stores[0]?.n).toBe(3)
    expect(final.assignment).toEqual(c.cluster.assignment)
    expect(load.acked.length).toBeGreaterThan(10)
    const thin: string[] = []
    for (const key of [...load.acked, ...Array.from({ length: 60 }, (_, i) => `k${i}`)]) {
      const { held } = await holders(c, final, key)
      if (held < 2) thin.push(`${key} (${held} of 3)`)
    }
    expect(thin, 'acknowledged writes on fewer than w=2 replicas of n=3').toEqual([])
    for (let i = 0; i < 60; i++) expect((await seed.get(`k${i}`)).values).toEqual([`v${i}`])
    for (const e of c.engines.values()) expect((await e.getCluster())?.version).toBe(final.version)
  }, 60_000)

  it('3 → 2: every key stays readable, and the replica each partition no longer uses drops its rows at cleanup', async () => {
    cluster = await memoryCluster({ nodes: 3, partitions: 16, stores: [{ name: 'default', n: 3, r: 1, w: 1 }] })
    const c = cluster
    const { kv: driver } = await c.client()
    const s = driver.store('default', { codec: 'utf8' })
    for (let i = 0; i < 40; i++) await s.put(`k${i}`, `v${i}`, { w: 3 })
    const before = await Promise.all(['n1', 'n2', 'n3'].map((id) => rowsOn(c, id, 16)))
    expect(before).toEqual([40, 40, 40])
    const final = await driver.rebalance(driver.planReplicaChange('default', 2), FAST)
    expect(final.stores[0]?.n).toBe(2)
    for (let i = 0; i < 40; i++) expect((await s.get(`k${i}`)).values).toEqual([`v${i}`])
    // Each key is on exactly its two replicas now: 80 rows in all.
    const after = await Promise.all(['n1', 'n2', 'n3'].map((id) => rowsOn(c, id, 16)))
    expect(after.reduce((a, b) => a + b, 0)).toBe(80)
    for (let i = 0; i < 40; i++) expect(await holders(c, final, `k${i}`)).toEqual({ held: 2, of: 2 })
  }, 60_000)

  it('refuses an n the cluster cannot hold, the same n, and quorums that would not fit; a node refuses n changed outside the switch', async () => {
    cluster = await memoryCluster({ nodes: 3, stores: [{ name: 'default', n: 3, r: 2, w: 2 }] })
    const { kv } = await cluster.client()
    expect(() => kv.planReplicaChange('default', 4)).toThrow(/n must be 1\.\.3/)
    expect(() => kv.planReplicaChange('default', 3)).toThrow(/already keeps n=3/)
    expect(() => kv.planReplicaChange('default', 1)).toThrow(/r=2, w=2, pr=0, pw=1 must fit in n=1: lower them first/)
    const engine = cluster.engines.get('n1')
    const def = cluster.cluster
    await expect(engine?.putCluster({ ...def, version: 2, stores: [{ ...(def.stores[0] as ClusterDef['stores'][0]), n: 2 }] })).rejects.toThrow(
      /only a rebalance changes n/,
    )
  })

  it('a node that missed versions of an n change (down, or lost its last commits) still takes the later ones', async () => {
    const v1 = fourNodes()
    const plan = planReplicaChange(v1, 'default', 2)
    const steps: ClusterDef[] = [v1]
    for (let next = advance(v1, plan); next; next = advance(steps[steps.length - 1] as ClusterDef, plan)) steps.push(next)
    const [, writeBoth, readNew, useNew, cleanup, final] = steps as [ClusterDef, ClusterDef, ClusterDef, ClusterDef, ClusterDef, ClusterDef]
    expect([writeBoth.move?.stage, readNew.move?.stage, useNew.move?.stage, cleanup.move?.stage, final.move]).toEqual([
      'write-both',
      'read-new',
      'use-new',
      'cleanup',
      undefined,
    ])
    // Held read-new, then handed cleanup (use-new lost); held read-new, then handed the final one;
    // held the definition from before the plan, then handed the final one.
    for (const [held, later] of [
      [[v1, writeBoth, readNew], cleanup],
      [[v1, writeBoth, readNew], final],
      [[v1], final],
    ] as const) {
      const e = new StorageEngine({ path: ':memory:', nodeId: 'n1' })
      for (const d of held) await e.putCluster(d)
      await e.putCluster(later)
      expect((await e.getCluster())?.stores[0]?.n).toBe(2)
      e.close()
    }
    // An abort of the plan that carries the new n is not the plan's: refused.
    const forged = new StorageEngine({ path: ':memory:', nodeId: 'n1' })
    for (const d of [v1, writeBoth]) await forged.putCluster(d)
    const abort = abortMove(writeBoth)
    await expect(forged.putCluster({ ...abort, stores: [storeDef({ name: 'default', n: 2, r: 1, w: 1 })] })).rejects.toThrow(/only a rebalance changes n/)
    forged.close()
    // A hand-made definition that changes n without a plan is still refused.
    const e = new StorageEngine({ path: ':memory:', nodeId: 'n1' })
    await e.putCluster(v1)
    await expect(e.putCluster({ ...v1, version: 9, stores: [storeDef({ name: 'default', n: 2, r: 1, w: 1 })] })).rejects.toThrow(/only a rebalance changes n/)
    e.close()
  })

  it('a plan made before the quorums grew past the new n is refused when it would start, changing nothing', async () => {
    const c = await memoryCluster({ nodes: 3, stores: [{ name: 'default', n: 3, r: 2, w: 2 }] })
    cluster = c
    const { kv } = await c.client()
    const plan = kv.planReplicaChange('default', 2)
    await kv.alterStore('default', { r: 3 })
    // The store changed under the plan: the plan is refused (and would be, quorums checked again, by advance).
    await expect(kv.rebalance(plan, FAST)).rejects.toThrow(/was made from cluster version 1/)
    expect(() => advance({ ...c.cluster, version: 1, stores: [storeDef({ name: 'default', n: 3, r: 3, w: 2 })] }, plan)).toThrow(
      /r=3, w=2, pr=0, pw=1 must fit in n=2/,
    )
    const held = await c.engines.get('n1')?.getCluster()
    expect(held?.move).toBeUndefined()
    expect(held?.stores[0]).toMatchObject({ n: 3, r: 3 })
  })

  it('a plan made from an older definition is refused when it would start (an old n plan after an add would undo the add)', async () => {
    cluster = await memoryCluster({ nodes: 3, stores: [{ name: 'default', n: 3, r: 1, w: 1 }] })
    const { kv } = await cluster.client()
    const plan = kv.planReplicaChange('default', 2)
    await kv.alterStore('default', { maxSiblings: 50 })
    await expect(kv.rebalance(plan, FAST)).rejects.toThrow(/was made from cluster version 1; the cluster is at version 2 now: plan the change again/)
    expect((await cluster.engines.get('n1')?.getCluster())?.move).toBeUndefined()
  })

  it("a node still holding a finished plan's move takes the next plan's definitions (it missed the end), not an older plan's", async () => {
    const v1 = fourNodes()
    const plan = planReplicaChange(v1, 'default', 2)
    const writeBoth = advance(v1, plan) as ClusterDef
    const readNew = advance(writeBoth, plan) as ClusterDef
    let def = readNew
    for (let next = advance(def, plan); next; next = advance(def, plan)) def = next
    // The cluster finished the plan and starts another from its final version.
    const second = planReplicaChange(def, 'default', 3)
    const secondStart = advance(def, second) as ClusterDef
    const e = new StorageEngine({ path: ':memory:', nodeId: 'n1' })
    for (const d of [v1, writeBoth, readNew]) await e.putCluster(d)
    await e.putCluster(secondStart)
    expect((await e.getCluster())?.move?.planId).toBe(second.planId)
    // A plan made before the one the node holds is still refused.
    const e2 = new StorageEngine({ path: ':memory:', nodeId: 'n1' })
    for (const d of [v1, writeBoth, readNew]) await e2.putCluster(d)
    const older = { ...secondStart, version: readNew.version + 5, move: { ...(secondStart.move as NonNullable<ClusterDef['move']>), planId: 'p0-older' } }
    await expect(e2.putCluster(older)).rejects.toThrow(/plan .* is in progress here/)
    e.close()
    e2.close()
  })
})

/** Version 1 of a 4-node, 8-partition cluster with one n=3 store. */
function fourNodes(): ClusterDef {
  const nodes = [1, 2, 3, 4].map((i) => ({ id: `n${i}`, url: `mem://n${i}` }))
  return { version: 1, partitions: 8, nodes, assignment: initialAssignment(nodes, 8), stores: [storeDef({ name: 'default', n: 3, r: 1, w: 1 })] }
}
