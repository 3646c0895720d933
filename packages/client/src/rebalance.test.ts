import { afterEach, describe, expect, it } from 'vitest'
import { type ClusterDef, type MembershipPlan, type StoreDef, Placement, Ring, advance, keyBytes } from '@kvorum/core'
import { StorageEngine } from '@kvorum/storage'
import { type MemoryCluster, memoryCluster } from '../../../test/support/memory-cluster.js'
import { writers } from '../../../test/support/writers.js'
import type { Kvorum, RebalanceProgress } from './index.js'
import { detectorOf, handoffWorker } from './testing.js'

let cluster: MemoryCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

/** Clients' deadline in these tests; the driver's drain must outlast it (operations routed under an older version finish or fail within it). */
const TIMEOUT_MS = 300
const FAST = { drainMs: TIMEOUT_MS + 50, cleanupGraceMs: 30, barrierTimeoutMs: 5000 }

/** Every partition row an engine holds, as partition numbers. */
async function partitionsHeld(engine: StorageEngine, q: number): Promise<Set<number>> {
  const out = new Set<number>()
  for (let p = 0; p < q; p++) if ((await engine.scan('default', { partition: p, limit: 1 })).items.length > 0) out.add(p)
  return out
}

/** A progress callback that throws (a driver dying) the first time `when` holds. */
function stopOnce(when: (p: RebalanceProgress) => boolean, message: string): (p: RebalanceProgress) => void {
  let stopped = false
  return (p) => {
    if (stopped || !when(p)) return
    stopped = true
    throw new Error(message)
  }
}

async function addNode(c: MemoryCluster, id: string): Promise<{ id: string; url: string }> {
  const engine = new StorageEngine({ path: ':memory:', nodeId: id })
  c.engines.set(id, engine)
  return { id, url: `mem://${id}` }
}

/**
 * Each acknowledged write is held by at least w (2) replicas of the final placement, read from the
 * engines themselves: a read quorum (r=2) of the final replicas is then sure to see it. This is what
 * writing both sets and copying before the switch guarantee; a write that reached only old replicas,
 * one of which left, would be held by one.
 */
async function checkReplicated(c: MemoryCluster, final: ClusterDef, acked: readonly string[]): Promise<void> {
  const ring = new Ring(final)
  const thin: string[] = []
  for (const key of acked) {
    const bytes = new TextEncoder().encode(key)
    const replicas = ring.primaries(ring.partitionOf(bytes), 3)
    let holders = 0
    for (const id of replicas) {
      const [res] = (await c.engines.get(id)?.get('default', [bytes])) ?? []
      if (res?.ok && res.value.some((v) => v.value !== null)) holders++
    }
    if (holders < 2) thin.push(`${key} (${holders} of ${replicas.join(', ')})`)
  }
  expect(thin, 'acknowledged writes held by fewer than 2 replicas of the final layout').toEqual([])
}

async function checkNothingLost(kv: Kvorum, acked: readonly string[]): Promise<void> {
  const s = kv.store<string>('default', { codec: 'utf8' })
  const missing: string[] = []
  for (const key of acked) if (!(await s.get(key)).values.includes(key)) missing.push(key)
  expect(missing, 'acknowledged writes a read does not return').toEqual([])
}

describe('membership change over in-memory nodes', () => {
  it('3 → 4 under concurrent writers: nothing acknowledged lost, reads keep working, the joiner serves its share and leavers drop theirs', async () => {
    cluster = await memoryCluster({ partitions: 64 })
    const c = cluster
    const { kv: driver } = await c.client()
    const seed = driver.store<string>('default', { codec: 'utf8' })
    for (let i = 0; i < 100; i++) await seed.put(`k${i}`, `v${i}`)
    const n4 = await addNode(c, 'n4')
    // The writers cannot reach n1 (an old replica that keeps most of its partitions), so their
    // writes land on only two old replicas: one of which may leave. Only writing both the old and
    // the new replicas keeps each acknowledged write on two replicas of the final layout.
    const ends = [await c.client({ timeoutMs: TIMEOUT_MS }), await c.client({ timeoutMs: TIMEOUT_MS })]
    for (const { transport } of ends) transport.setReachable('n1', false)
    const clients = ends.map((e) => e.kv)
    const watcher = (await c.client()).kv
    const load = writers(clients)
    const plan: MembershipPlan = driver.planChange({ add: [n4] })
    expect(plan.movement.movedOntoOldNodes).toBe(0)
    const stages: string[] = []
    const copies: RebalanceProgress[] = []
    const final: ClusterDef = await driver.rebalance(plan, {
      ...FAST,
      onProgress: (p) => {
        stages.push(`${p.step}:${p.stage}:${p.phase}`)
        if (p.phase === 'copy') copies.push(p)
      },
    })
    await load.stop()
    // Closing waits for the writers' late replica writes (an add is acknowledged once w are in).
    await Promise.all(clients.map((kv) => kv.close()))
    expect(final.move).toBeUndefined()
    expect(final.assignment).toEqual(plan.target)
    expect(final.nodes.map((n) => n.id).sort()).toEqual(['n1', 'n2', 'n3', 'n4'])
    expect(stages).toContain('1:write-both:copy')
    // The copy reports how far its pass is, so the CLI can show a rate and an ETA.
    const passEnds = copies.filter((p) => p.partitionsToCopy > 0 && p.partitionsCopied === p.partitionsToCopy)
    expect(passEnds.length).toBeGreaterThan(0)
    expect(copies.some((p) => p.partitionsCopied > 0 && p.partitionsCopied < p.partitionsToCopy)).toBe(true)
    expect(copies.every((p) => p.copyElapsedMs >= 0 && p.copyElapsedMs <= p.elapsedMs)).toBe(true)
    expect(load.acked.length).toBeGreaterThan(20)
    await checkReplicated(c, final, load.acked)
    // Every acknowledged add is there, through a client that started before the change and never refreshed by hand.
    await checkNothingLost(watcher, load.acked)
    for (let i = 0; i < 100; i++) expect((await seed.get(`k${i}`)).values).toEqual([`v${i}`])
    // Each node holds exactly the partitions it replicates now.
    const ring = new Ring(final)
    for (const [id, engine] of c.engines) {
      const should = new Set(Array.from({ length: 64 }, (_, p) => p).filter((p) => ring.holds(id, p, 3)))
      const held = await partitionsHeld(engine, 64)
      for (const p of held) expect(should.has(p), `${id} still holds partition ${p}`).toBe(true)
    }
    expect((await partitionsHeld(c.engines.get('n4') as StorageEngine, 64)).size).toBeGreaterThan(0)
    // Every node installed the final version.
    for (const e of c.engines.values()) expect((await e.getCluster())?.version).toBe(final.version)
  }, 60_000)

  it('a driver that stops mid-way is resumed by running it again, and an abort before the switch loses nothing', async () => {
    cluster = await memoryCluster({ partitions: 32 })
    const c = cluster
    const { kv: driver } = await c.client()
    const n4 = await addNode(c, 'n4')
    const s = driver.store<string>('default', { codec: 'utf8' })
    for (let i = 0; i < 50; i++) await s.put(`k${i}`, `v${i}`)
    const plan = driver.planChange({ add: [n4], entriesPerStep: 4 })
    expect(plan.steps).toBeGreaterThan(1)
    // Kill the driver (here: make it throw) the first time it waits in step 2.
    await expect(driver.rebalance(plan, { ...FAST, onProgress: stopOnce((p) => p.step === 2 && p.phase === 'drain', 'driver killed') })).rejects.toThrow(
      'driver killed',
    )
    const midway = (await c.engines.get('n1')?.getCluster()) as ClusterDef
    expect(midway.move?.step).toBe(2)
    // A second plan is refused while this one runs.
    expect(() => driver.planChange({ remove: ['n4'] })).toThrow(/in progress/)
    // A new driver process resumes it: same command, no plan given.
    const { kv: again } = await c.client()
    const final = await again.rebalance(undefined, FAST)
    expect(final.assignment).toEqual(plan.target)
    for (let i = 0; i < 50; i++) expect((await again.store<string>('default', { codec: 'utf8' }).get(`k${i}`)).values).toEqual([`v${i}`])
  }, 60_000)

  it('a copy that cannot reach a replica waits for it, naming it, and finishes once it answers again', async () => {
    cluster = await memoryCluster({ partitions: 32 })
    const c = cluster
    const { kv: driver, transport } = await c.client()
    const n4 = await addNode(c, 'n4')
    const s = driver.store<string>('default', { codec: 'utf8' })
    for (let i = 0; i < 50; i++) await s.put(`k${i}`, `v${i}`)
    const plan = driver.planChange({ add: [n4] })
    const waited: string[][] = []
    let cut = false
    const final = await driver.rebalance(plan, {
      ...FAST,
      maxCopyPasses: 1,
      onProgress: (p) => {
        if (p.phase !== 'copy') return
        // n1 goes down as the copy starts, for 1.5 s: more than the one pass allowed takes.
        if (!cut) {
          cut = true
          transport.setReachable('n1', false)
          setTimeout(() => transport.setReachable('n1', true), 1500)
        }
        if (p.waitingFor.length > 0) waited.push([...p.waitingFor])
      },
    })
    expect(final.assignment).toEqual(plan.target)
    expect(waited.some((w) => w.some((x) => x.startsWith('n1 ')))).toBe(true)
    for (let i = 0; i < 50; i++) expect((await s.get(`k${i}`)).values).toEqual([`v${i}`])
  }, 60_000)

  it('a copy gives up after its time with an error naming the replica that does not answer, and the move stays where it was', async () => {
    cluster = await memoryCluster({ partitions: 32 })
    const c = cluster
    const { kv: driver, transport } = await c.client()
    const n4 = await addNode(c, 'n4')
    const s = driver.store<string>('default', { codec: 'utf8' })
    for (let i = 0; i < 50; i++) await s.put(`k${i}`, `v${i}`)
    const plan = driver.planChange({ add: [n4] })
    const run = driver.rebalance(plan, {
      ...FAST,
      barrierTimeoutMs: 1500,
      maxCopyPasses: 1,
      onProgress: (p) => {
        // n2 goes down as the copy starts (after its first partition), for good.
        if (p.phase === 'copy') transport.setReachable('n2', false)
      },
    })
    await expect(run).rejects.toThrow(/the copy of step 1 did not finish within 2 s .*not answering: n2 /)
    expect((await c.engines.get('n1')?.getCluster())?.move?.stage).toBe('write-both')
  }, 60_000)

  it('abort during the copy restores the old layout: every write stays readable and the joiner drops its copies', async () => {
    cluster = await memoryCluster({ partitions: 32 })
    const c = cluster
    const { kv: driver } = await c.client()
    const n4 = await addNode(c, 'n4')
    const s = driver.store<string>('default', { codec: 'utf8' })
    for (let i = 0; i < 50; i++) await s.put(`k${i}`, `v${i}`)
    const before = driver.cluster.assignment
    const plan = driver.planChange({ add: [n4] })
    await expect(
      driver.rebalance(plan, { ...FAST, onProgress: stopOnce((p) => p.stage === 'write-both' && p.phase === 'drain', 'stop here') }),
    ).rejects.toThrow('stop here')
    for (let i = 50; i < 60; i++) await s.put(`k${i}`, `v${i}`)
    const aborted = await driver.abortRebalance(FAST)
    expect(aborted.move).toBeUndefined()
    expect(aborted.assignment).toEqual(before)
    expect(aborted.nodes.map((n) => n.id)).not.toContain('n4')
    for (let i = 0; i < 60; i++) expect((await s.get(`k${i}`)).values).toEqual([`v${i}`])
    expect((await partitionsHeld(c.engines.get('n4') as StorageEngine, 32)).size).toBe(0)
  }, 60_000)

  it('while a move writes both, a write needs its quorum in the new replicas too, not only in the old', async () => {
    cluster = await memoryCluster({ partitions: 32 })
    const c = cluster
    await addNode(c, 'n4')
    const { kv: planner } = await c.client()
    const plan = planner.planChange({ add: [{ id: 'n4', url: 'mem://n4' }] })
    const s1 = advance(c.cluster, plan) as ClusterDef
    expect(s1.move?.stage).toBe('write-both')
    for (const e of c.engines.values()) await e.putCluster(s1)
    const placement = new Placement(s1)
    // A key of a moving partition: O = the three old nodes, N = two of them and n4.
    let key = ''
    for (let i = 0; !key; i++) if (placement.moving(placement.ring.partitionOf(keyBytes(`k${i}`)), s1.stores[0] as StoreDef)) key = `k${i}`
    const part = placement.ring.partitionOf(keyBytes(key))
    const [o, n] = placement.writeSets(part, s1.stores[0] as StoreDef) as [string[], string[]]
    const stays = n.find((id) => id !== 'n4') as string
    const { kv, transport } = await c.client({ timeoutMs: 500 })
    expect(kv.cluster.version).toBe(s1.version)
    // Cut n4 and one node that is in both sets: the old set still has two replicas, the new set one.
    transport.setReachable('n4', false)
    transport.setReachable(stays, false)
    expect(o.filter((id) => id !== stays)).toHaveLength(2)
    await expect(kv.store('default').put(key, new Uint8Array([1]))).rejects.toMatchObject({ code: 'KV_QUORUM_NOT_MET' })
    // With the new set reachable the same write is acknowledged.
    transport.setReachable('n4', true)
    detectorOf(kv).success('n4')
    await expect(kv.store('default').put(key, new Uint8Array([2]), { timeoutMs: 2000 })).resolves.toBeDefined()
  })
})

describe('hints across a membership change (MEMBERSHIP rule 9)', () => {
  it('a hint whose target left the cluster is merged into the current replicas, then deleted', async () => {
    cluster = await memoryCluster({ nodes: 4, partitions: 32 })
    const c = cluster
    const { kv } = await c.client()
    const key = keyBytes('hinted')
    const set = [{ dot: { actor: 'abc123', counter: 1 }, context: {}, timestamp: 1, value: new TextEncoder().encode('kept') }]
    // n1 keeps a hint for n4; then n4 leaves the cluster (its entries go to the others).
    await c.engines.get('n1')?.putHints('n4', [{ store: 'default', key, siblings: set }])
    const plan = kv.planChange({ remove: ['n4'], entriesPerStep: 32 })
    const without: ClusterDef = { ...c.cluster, version: 2, nodes: plan.targetNodes, assignment: plan.target }
    for (const e of c.engines.values()) await e.putCluster(without)
    const { kv: fresh } = await c.client()
    const report = await handoffWorker(fresh).sweep()
    expect(report.delivered).toBe(1)
    expect(await c.engines.get('n1')?.hintTargets()).toEqual([])
    const ring = new Ring(without)
    let holders = 0
    for (const id of ring.primaries(ring.partitionOf(key), 3)) {
      const [res] = (await c.engines.get(id)?.get('default', [key])) ?? []
      if (res?.ok && res.value.some((v) => v.dot.actor === 'abc123')) holders++
    }
    expect(holders).toBeGreaterThanOrEqual(2)
  })
})

describe('replacing a dead node', () => {
  it("--replace with --dead: an empty node takes a dead one's place, copied from the survivors, every key readable", async () => {
    cluster = await memoryCluster({ partitions: 32 })
    const c = cluster
    const { kv } = await c.client()
    const s = kv.store<string>('default', { codec: 'utf8' })
    for (let i = 0; i < 60; i++) await s.put(`k${i}`, `v${i}`, { w: 3 })
    // n3's disk is gone for good: its engine is no longer reachable at all.
    c.engines.get('n3')?.close()
    c.engines.delete('n3')
    const n4 = await addNode(c, 'n4')
    const plan = kv.planChange({ replace: { n3: n4 } })
    // Replica sets change only by substitution: n4 takes exactly n3's entries.
    expect(plan.target).toEqual(c.cluster.assignment.map((owner) => (owner === 'n3' ? 'n4' : owner)))
    const final = await kv.rebalance(plan, { ...FAST, dead: ['n3'] })
    expect(final.nodes.map((n) => n.id).sort()).toEqual(['n1', 'n2', 'n4'])
    for (let i = 0; i < 60; i++) expect((await s.get(`k${i}`, { r: 3 })).values).toEqual([`v${i}`])
    // The new node holds every key (n=3 over three nodes), copied from n1 and n2.
    const [res] = await (c.engines.get('n4') as StorageEngine).get('default', [keyBytes('k7')])
    expect(res?.ok && res.value.length).toBe(1)
  })
})
