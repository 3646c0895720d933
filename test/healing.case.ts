import { afterEach, describe, expect, it } from 'vitest'
import { type KeySet, toHex, utf8 } from '@kvorum/core'
import type { ConnectOptions, Kvorum, NodeClient } from '@kvorum/client'
import { detectorOf, handoffWorker } from '@kvorum/client/testing'
import { dotsOf, dropHints, eventually, hintBacklog, replicaSets, storeContents } from './support/replicas.js'

/**
 * Self-healing (DESIGN.md §6), specified once and run over two clusters: in-process engines behind the in-memory
 * transport (packages/client/src/healing.test.ts) and real node processes (test/healing-cluster.test.ts). Each
 * cluster says how a node goes down, is cut off, comes back and is wiped; the behaviours are the same.
 */

/** Three nodes n1..n3 holding one store, `default`, with n = 3. */
export interface HealingCluster {
  readonly ids: readonly string[]
  readonly partitions: number
  /** The operator's view of a node, straight to it (not through any client's faults). */
  replica(id: string): NodeClient
  /** A new SDK client, closed with the cluster. */
  connect(options?: Partial<ConnectOptions>): Promise<Kvorum>
  /** The node stops answering, its data kept (in memory: unreachable; processes: SIGKILL). */
  down(id: string): Promise<void>
  /** The node answers again on the data it had (processes: restarted). */
  up(id: string): Promise<void>
  /** The node keeps running but no client's request reaches it (in memory: unreachable; processes: SIGSTOP). */
  cut(id: string): void
  uncut(id: string): void
  /** The node comes back empty, with the cluster definition installed again (its database deleted). */
  wipe(id: string): Promise<void>
  close(): Promise<void>
}

export interface HealingClusterOptions {
  readonly partitions?: number
  /** The store's tombstone grace period, ms. */
  readonly tombstoneGraceMs?: number
}

export interface HealingSetup {
  start(options: HealingClusterOptions): Promise<HealingCluster>
  /** Keys loaded for the repair-cost test: as many as the cluster loads quickly. */
  readonly loadKeys: number
  /** Tombstone grace period for the reaping test, ms: long enough for the steps before it to finish. */
  readonly graceMs: number
}

const STORE = 'default'

/** The test's wait for replicas to agree or a backlog to drain, ms. */
const SETTLE_MS = 15_000

export function healingCases(name: string, setup: HealingSetup): void {
  let cluster: HealingCluster | undefined
  afterEach(async () => {
    await cluster?.close()
    cluster = undefined
  })
  const start = async (options: HealingClusterOptions = {}) => (cluster = await setup.start(options))

  const contents = (c: HealingCluster, id: string) => storeContents(c.replica(id), STORE, c.partitions)
  const others = (c: HealingCluster, id: string) => c.ids.filter((i) => i !== id).map((i) => c.replica(i))
  const all = (c: HealingCluster) => c.ids.map((i) => c.replica(i))
  const entries = (c: HealingCluster) => c.ids.map((i) => [i, c.replica(i)] as const)
  /** Until every replica holds the same sets for every key (the third copy of a w=2 write lands after the ack). */
  const settled = (c: HealingCluster) =>
    eventually(async () => {
      const [first, ...rest] = await Promise.all(c.ids.map((id) => contents(c, id)))
      return rest.every((r) => r.size === first?.size && [...r].every(([k, d]) => first.get(k) === d))
    }, SETTLE_MS)
  /** The node is back: tell the client's detector, as its next recovery probe would. */
  const back = async (c: HealingCluster, kv: Kvorum, id: string) => {
    await c.up(id)
    detectorOf(kv).success(id)
  }

  describe(`${name}: hinted handoff`, () => {
    it('a node down during writes gets every one of them through hints once it is back, and the backlog empties', async () => {
      const c = await start()
      const kv = await c.connect()
      const s = kv.store<string>(STORE, { codec: 'utf8' })
      const writes = (from: number, to: number) => Promise.all(Array.from({ length: to - from }, (_, i) => s.put(`k${from + i}`, `v${from + i}`)))
      await writes(0, 50)
      await c.down('n2')
      await writes(50, 250)
      // Every write after the node went down left a hint; some of the first 50 may have (their third copy was on its way).
      const hinted = await hintBacklog(others(c, 'n2'), 'n2')
      expect(hinted).toBeGreaterThanOrEqual(200)
      expect(hinted).toBeLessThanOrEqual(250)
      await back(c, kv, 'n2')
      let delivered = 0
      await eventually(async () => {
        delivered += (await handoffWorker(kv).sweep()).delivered
        return (await hintBacklog(all(c), 'n2')) === 0
      }, SETTLE_MS)
      expect(delivered).toBe(hinted)
      const [n1, n2] = await Promise.all([contents(c, 'n1'), contents(c, 'n2')])
      expect(n2.size).toBe(250)
      expect(n2).toEqual(n1)
    })

    it('a hint for a key deleted later carries the tombstone, so late delivery cannot bring the value back', async () => {
      const c = await start()
      const kv = await c.connect()
      const s = kv.store<string>(STORE, { codec: 'utf8' })
      await c.down('n3')
      await s.put('gone', 'v1')
      await s.delete('gone')
      await back(c, kv, 'n3')
      await handoffWorker(kv).sweep()
      const onN3 = (await replicaSets([['n3', c.replica('n3')]], STORE, 'gone')).get('n3') ?? []
      expect(onN3.length).toBeGreaterThan(0)
      expect(onN3.every((v) => v.value === null)).toBe(true)
      expect((await s.get('gone', { r: 3 })).found).toBe(false)
    })
  })

  describe(`${name}: anti-entropy`, () => {
    it('a wiped replica gets its peers exact sibling sets back in one repair pass; a second pass repairs nothing', async () => {
      const c = await start()
      const kv = await c.connect()
      const s = kv.store<string>(STORE, { codec: 'utf8' })
      await Promise.all(Array.from({ length: 300 }, (_, i) => s.put(`k${i}`, `v${i}`)))
      const { context } = await s.get('k1')
      await Promise.all([s.put('k1', 'left', { context }), s.put('k1', 'right', { context })])
      await s.delete('k2')
      await settled(c)
      const before = await contents(c, 'n1')
      expect(before.get(toHex(utf8('k1')))?.split(',')).toHaveLength(2)
      await c.wipe('n3')
      expect((await contents(c, 'n3')).size).toBe(0)
      const first = await kv.repair()
      expect(first.keysRepaired).toBe(300)
      expect(await contents(c, 'n3')).toEqual(before)
      expect(await c.replica('n3').merkleRoots({ timeoutMs: 5000 }, STORE)).toEqual(await c.replica('n1').merkleRoots({ timeoutMs: 5000 }, STORE))
      expect(await kv.repair()).toMatchObject({ keysRepaired: 0, partitionsDiffering: 0 })
    })

    it('keys written with w=1 while the other replicas were cut off converge in one pass, with no reads and no hints', async () => {
      const c = await start()
      const kv = await c.connect({ timeoutMs: 1500, requestTimeoutMs: 300 })
      const s = kv.store<string>(STORE, { codec: 'utf8', w: 1 })
      c.cut('n2')
      c.cut('n3')
      let acked = 0
      for (let i = 0; i < 30; i++)
        if (
          await s.put(`w1-${i}`, `v${i}`).then(
            () => true,
            () => false,
          )
        )
          acked++
      c.uncut('n2')
      c.uncut('n3')
      expect(acked).toBeGreaterThan(0)
      // Only anti-entropy may heal: drop the parked hints and repair from a fresh client that has read nothing.
      for (const id of ['n2', 'n3']) await dropHints(all(c), id)
      const repairer = await c.connect()
      const report = await repairer.repair()
      expect(report.keysRepaired).toBeGreaterThanOrEqual(acked)
      const [n1, n2, n3] = await Promise.all(c.ids.map((id) => contents(c, id)))
      expect(n1?.size).toBeGreaterThanOrEqual(acked)
      expect(n2).toEqual(n1)
      expect(n3).toEqual(n1)
    })

    it(`repairing k keys in a store of ${setup.loadKeys.toLocaleString('en')} keys exchanges bytes in proportion to k`, async () => {
      const c = await start({ partitions: 256 })
      const kv = await c.connect()
      const value = new Uint8Array(200).fill(1)
      const T = { timeoutMs: 10_000 }
      // Load the replicas directly, 1000 keys per request, as if they had long agreed.
      for (let b = 0; b < setup.loadKeys / 1000; b++) {
        const items: KeySet[] = Array.from({ length: 1000 }, (_, i) => ({
          key: utf8(`key-${b * 1000 + i}`),
          siblings: [{ dot: { actor: 'load', counter: b * 1000 + i + 1 }, context: {}, timestamp: 1, value }],
        }))
        const owners = new Map<string, KeySet[]>()
        for (const it of items) for (const id of kv.ring.primaries(kv.ring.partitionOf(it.key), 3)) owners.set(id, [...(owners.get(id) ?? []), it])
        await Promise.all([...owners].map(([id, group]) => c.replica(id).mergePut(T, STORE, group)))
      }
      const quiet = await kv.repair()
      expect(quiet.keysRepaired).toBe(0)
      for (const k of [10, 100]) {
        const diverged: KeySet[] = Array.from({ length: k }, (_, i) => ({
          key: utf8(`key-${(i * 7919 + k) % setup.loadKeys}`),
          siblings: [{ dot: { actor: `d${k}`, counter: i + 1 }, context: { load: setup.loadKeys }, timestamp: 2, value }],
        }))
        await c.replica('n1').mergePut(T, STORE, diverged)
        const report = await kv.repair()
        expect(report.keysRepaired).toBe(k)
        expect(report.bytesExchanged).toBeLessThan(64 * 1024 + 2048 * k)
        expect(report.bytesExchanged).toBeGreaterThan(quiet.bytesExchanged)
        expect(await kv.repair()).toMatchObject({ keysRepaired: 0, partitionsDiffering: 0 })
      }
    }, 120_000)
  })

  describe(`${name}: tombstones`, () => {
    it('a key deleted while a replica was down stays deleted through reads, repair and late hints, and is reaped after the grace period', async () => {
      const c = await start({ tombstoneGraceMs: setup.graceMs })
      const kv = await c.connect()
      const s = kv.store<string>(STORE, { codec: 'utf8' })
      const everywhere = () => replicaSets(entries(c), STORE, 'doomed')
      await s.put('doomed', 'alive')
      await settled(c)
      await c.down('n3')
      await s.delete('doomed')
      await back(c, kv, 'n3')
      // n3 still holds the value; its hint is delivered only after reads and repair have had their chance.
      expect((await everywhere()).get('n3')?.some((v) => v.value !== null)).toBe(true)
      expect((await s.get('doomed', { r: 3 })).found).toBe(false)
      await kv.repair()
      expect((await s.get('doomed', { r: 3 })).found).toBe(false)
      for (const [id, set] of await everywhere()) expect(set.length > 0 && set.every((v) => v.value === null), `${id} holds ${dotsOf(set)}`).toBe(true)
      await handoffWorker(kv).sweep()
      expect((await s.get('doomed', { r: 3 })).found).toBe(false)
      await new Promise((r) => setTimeout(r, setup.graceMs + 100))
      expect((await kv.repair()).tombstonesReaped).toBe(1)
      const after = await everywhere()
      expect([...after.keys()]).toEqual(c.ids)
      for (const set of after.values()) expect(set).toEqual([])
      expect((await s.get('doomed', { r: 3 })).found).toBe(false)
    })

    it('keeps a tombstone while any node still holds hints for one of its replicas', async () => {
      const c = await start({ tombstoneGraceMs: 0 })
      const kv = await c.connect()
      const s = kv.store<string>(STORE, { codec: 'utf8' })
      await s.put('a', '1')
      await s.delete('a')
      await settled(c)
      await c.down('n3')
      await s.put('other', 'x')
      await eventually(async () => (await hintBacklog(others(c, 'n3'), 'n3')) > 0, SETTLE_MS)
      expect(await hintBacklog(others(c, 'n3'), 'n3')).toBe(1)
      await back(c, kv, 'n3')
      expect((await kv.repair()).tombstonesReaped).toBe(0)
      await handoffWorker(kv).sweep()
      expect((await kv.repair()).tombstonesReaped).toBe(1)
    })
  })
}
