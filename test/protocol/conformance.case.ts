import { afterEach, describe, expect, it } from 'vitest'
import {
  type ClusterDef,
  type CoordinateItem,
  type ItemError,
  type ItemResult,
  type KeySet,
  type NodeDef,
  type NodeProtocol,
  type SiblingSet,
  BRANCH_FANOUT,
  HASH_BYTES,
  Ring,
  fromUtf8,
  initialAssignment,
  keyHash,
  partitionOfHash,
  setContext,
  storeDef,
  toHex,
  utf8,
} from '@kvorum/core'
import { StorageEngine } from '@kvorum/storage'

/**
 * The node protocol's conformance suite: one set of behaviours every face of
 * a node must show alike (the engine in-process, the in-memory transport over
 * it, the HTTP transport over the node app). Written once against
 * NodeProtocol, as Hono runs one suite over every router.
 */

/** Wraps a fresh engine in the face under test. */
export type FaceFactory = (engine: StorageEngine) => NodeProtocol | Promise<NodeProtocol>

const Q = 8
const NODES: NodeDef[] = ['n1', 'n2', 'n3'].map((id, i) => ({ id, url: `http://127.0.0.1:${7001 + i}` }))

/** n1 holds every partition of `kv`, `few` (values up to 16 bytes, 3 siblings) and `last` (lww), and a third of `one` (n=1). */
function cluster(version = 1): ClusterDef {
  return {
    version,
    partitions: Q,
    nodes: NODES,
    assignment: initialAssignment(NODES, Q),
    stores: [
      // No tombstone grace: the suite reaps straight after deleting (a node counts the grace on its own clock).
      storeDef({ name: 'kv', n: 3, r: 2, w: 2, tombstoneGraceMs: 0 }),
      storeDef({ name: 'few', n: 3, r: 2, w: 2, maxValueBytes: 16, maxSiblings: 3 }),
      storeDef({ name: 'last', n: 3, r: 2, w: 2, conflict: 'lww' }),
      storeDef({ name: 'one', n: 1, r: 1, w: 1 }),
    ],
  }
}

function keyOwnedBy(owner: string, prefix: string): Uint8Array {
  const ring = new Ring(cluster())
  for (let i = 0; i < 10_000; i++) {
    const key = utf8(`${prefix}${i}`)
    if (ring.primaries(ring.partitionOf(key), 1)[0] === owner) return key
  }
  throw new Error(`no key owned by ${owner}`)
}

function ok<T>(result: ItemResult<T> | undefined): T {
  if (!result?.ok) throw new Error(`expected an ok item, got ${JSON.stringify(result)}`)
  return result.value
}

function failed(result: ItemResult<unknown> | undefined): ItemError {
  if (!result || result.ok) throw new Error(`expected a failed item, got ${JSON.stringify(result)}`)
  return result.error
}

const values = (set: SiblingSet) => set.map((v) => (v.value === null ? null : fromUtf8(v.value))).sort()
const dots = (set: SiblingSet) => set.map((v) => `${v.dot.actor}:${v.dot.counter}`).sort()
const write = (key: string | Uint8Array, value: string | Uint8Array | null, context = {}): CoordinateItem => ({
  key: typeof key === 'string' ? utf8(key) : key,
  value: typeof value === 'string' ? utf8(value) : value,
  context,
  timestamp: 1000,
})
const foreign = (value: Uint8Array | null, counter = 1) => ({ dot: { actor: 'elsewhere', counter }, context: {}, timestamp: 1, value })

export function protocolSuite(kind: string, face: FaceFactory): void {
  describe(`node protocol conformance: ${kind}`, () => {
    const engines: StorageEngine[] = []
    afterEach(() => {
      for (const e of engines.splice(0)) e.close()
    })
    /** A fresh node n1 (cluster installed through the face unless `def` is null), and the engine behind it. */
    async function open(def: ClusterDef | null = cluster()): Promise<{ node: NodeProtocol; engine: StorageEngine }> {
      const engine = new StorageEngine({ path: ':memory:', nodeId: 'n1' })
      engines.push(engine)
      const node = await face(engine)
      if (def) await node.putCluster(def)
      return { node, engine }
    }
    const coordinate = async (node: NodeProtocol, store: string, items: CoordinateItem[]) =>
      (await node.batch(store, { keys: [], coordinates: items, merges: [] })).coordinates
    const read = async (node: NodeProtocol, store: string, key: string | Uint8Array) =>
      ok((await node.get(store, [typeof key === 'string' ? utf8(key) : key]))[0])

    it("a batch answers section by section: reads see the batch's own writes, each write gets a dot of this incarnation", async () => {
      const { node, engine } = await open()
      const out = await node.batch('kv', {
        keys: [utf8('b1'), utf8('b3'), utf8('absent')],
        coordinates: [write('b1', 'one'), write('b2', 'two')],
        merges: [{ key: utf8('b3'), siblings: [foreign(utf8('copied'))] }],
      })
      expect(out.coordinates.map((r) => ok(r).dot.actor)).toEqual([engine.incarnation, engine.incarnation])
      expect(out.coordinates.map((r) => values(ok(r).siblings))).toEqual([['one'], ['two']])
      expect(out.merges).toEqual([{ ok: true, value: null }])
      expect(out.gets.map((r) => values(ok(r)))).toEqual([['one'], ['copied'], []])
      expect(values(await read(node, 'kv', 'b2'))).toEqual(['two'])
      const groups = engine.groupCommits
      await node.batch('kv', { keys: [], coordinates: [write('c1', 'x')], merges: [{ key: utf8('c2'), siblings: [foreign(null)] }] })
      expect(engine.groupCommits).toBe(groups + 1)
    })

    it("a stale context makes siblings, a read's context replaces what it read", async () => {
      const { node } = await open()
      const [first] = await coordinate(node, 'kv', [write('k', 'base')])
      const ctx = setContext(ok(first).siblings)
      await coordinate(node, 'kv', [write('k', 'left', ctx)])
      await coordinate(node, 'kv', [write('k', 'right', ctx)])
      const seen = await read(node, 'kv', 'k')
      expect(values(seen)).toEqual(['left', 'right'])
      const [after] = await coordinate(node, 'kv', [write('k', 'resolved', setContext(seen))])
      expect(values(ok(after).siblings)).toEqual(['resolved'])
    })

    it('a partition this node does not hold is KV_STALE_METADATA per item, in every section; the rest applies', async () => {
      const { node } = await open()
      const mine = keyOwnedBy('n1', 'mine')
      const theirs = keyOwnedBy('n2', 'theirs')
      const out = await node.batch('one', {
        keys: [mine, theirs],
        coordinates: [write(mine, 'm'), write(theirs, 't')],
        merges: [{ key: theirs, siblings: [foreign(utf8('x'))] }],
      })
      const stale = { code: 'KV_STALE_METADATA', message: expect.stringContaining('partition'), clusterVersion: 1 }
      expect(values(ok(out.coordinates[0]).siblings)).toEqual(['m'])
      for (const r of [out.coordinates[1], out.merges[0], out.gets[1]]) expect(failed(r)).toEqual(stale)
      expect(failed((await node.mergePut('one', [{ key: theirs, siblings: [foreign(utf8('x'))] }]))[0])).toEqual(stale)
      const gets = await node.get('one', [mine, theirs])
      expect(values(ok(gets[0]))).toEqual(['m'])
      expect(failed(gets[1])).toEqual(stale)
      const part = new Ring(cluster()).partitionOf(theirs)
      expect(toHex((await node.merkleRoots('one')).subarray(part * HASH_BYTES, (part + 1) * HASH_BYTES))).toBe('0'.repeat(16))
    })

    it("a value over the store's limit fails as one item, in a coordinate section, a merge section and a merge; the rest applies", async () => {
      const { node } = await open()
      const out = await node.batch('few', {
        keys: [utf8('big')],
        coordinates: [write('big', new Uint8Array(17)), write('fits', new Uint8Array(16))],
        merges: [
          { key: utf8('big2'), siblings: [foreign(new Uint8Array(17))] },
          { key: utf8('fits2'), siblings: [foreign(new Uint8Array(16))] },
        ],
      })
      expect(failed(out.coordinates[0]).code).toBe('KV_INVALID_INPUT')
      expect(ok(out.coordinates[1]).siblings).toHaveLength(1)
      expect(failed(out.merges[0]).code).toBe('KV_INVALID_INPUT')
      expect(out.merges[1]).toEqual({ ok: true, value: null })
      const merged = await node.mergePut('few', [{ key: utf8('big3'), siblings: [foreign(utf8('ok')), foreign(new Uint8Array(17), 2)] }])
      expect(failed(merged[0]).code).toBe('KV_INVALID_INPUT')
      const sets = await node.get('few', ['big', 'big2', 'big3', 'fits', 'fits2'].map(utf8))
      expect(sets.map((r) => ok(r).length)).toEqual([0, 0, 0, 1, 1])
      // The same value fits a store with the default limit.
      expect(ok((await coordinate(node, 'kv', [write('big', new Uint8Array(17))]))[0]).siblings).toHaveLength(1)
    })

    it("a write past the store's maxSiblings fails as one item and changes nothing", async () => {
      const { node } = await open()
      for (const v of ['a', 'b', 'c']) await coordinate(node, 'few', [write('k', v)])
      const before = await read(node, 'few', 'k')
      const [refused] = await coordinate(node, 'few', [write('k', 'd')])
      expect(failed(refused).code).toBe('KV_TOO_MANY_SIBLINGS')
      expect(dots(await read(node, 'few', 'k'))).toEqual(dots(before))
    })

    it('a merge is idempotent, and merging in any order converges', async () => {
      const { node: a } = await open()
      const { node: b } = await open()
      const s1 = ok((await coordinate(a, 'kv', [write('k', 'from-a')]))[0]).siblings
      const s2 = [foreign(utf8('from-elsewhere'), 7)]
      for (const s of [s1, s2]) ok((await b.mergePut('kv', [{ key: utf8('k'), siblings: s }]))[0])
      for (const s of [s2, s2]) ok((await a.mergePut('kv', [{ key: utf8('k'), siblings: s }]))[0])
      const onA = await read(a, 'kv', 'k')
      expect(values(onA)).toEqual(['from-a', 'from-elsewhere'])
      expect(dots(await read(b, 'kv', 'k'))).toEqual(dots(onA))
      expect(toHex(await b.merkleRoots('kv'))).toBe(toHex(await a.merkleRoots('kv')))
      const roots = toHex(await a.merkleRoots('kv'))
      ok((await a.mergePut('kv', [{ key: utf8('k'), siblings: onA }]))[0])
      expect(toHex(await a.merkleRoots('kv'))).toBe(roots)
    })

    it('an unknown store is KV_UNKNOWN_STORE for the whole request', async () => {
      const { node } = await open()
      const code = { code: 'KV_UNKNOWN_STORE' }
      await expect(node.batch('nope', { keys: [utf8('k')], coordinates: [], merges: [] })).rejects.toMatchObject(code)
      await expect(node.mergePut('nope', [{ key: utf8('k'), siblings: [] }])).rejects.toMatchObject(code)
      await expect(node.get('nope', [utf8('k')])).rejects.toMatchObject(code)
      await expect(node.merkleRoots('nope')).rejects.toMatchObject(code)
      await expect(node.scan('nope', { partition: 0, limit: 10 })).rejects.toMatchObject(code)
      await expect(node.putHints('n2', [{ store: 'nope', key: utf8('k'), siblings: [] }])).rejects.toMatchObject(code)
    })

    it('before a cluster definition: getCluster is null, health says version 0, data operations are KV_NO_CLUSTER', async () => {
      const { node, engine } = await open(null)
      expect(await node.getCluster()).toBeNull()
      expect(await node.health()).toEqual({ id: 'n1', incarnation: engine.incarnation, clusterVersion: 0, keys: 0, bytes: 0 })
      const code = { code: 'KV_NO_CLUSTER' }
      await expect(node.batch('kv', { keys: [utf8('k')], coordinates: [], merges: [] })).rejects.toMatchObject(code)
      await expect(node.merkleRoots('kv')).rejects.toMatchObject(code)
    })

    it('health in its readiness form is KV_NO_CLUSTER until a definition is installed, then answers as liveness does', async () => {
      const { node, engine } = await open(null)
      await expect(node.health({ ready: true })).rejects.toMatchObject({ code: 'KV_NO_CLUSTER' })
      expect(await node.health({ ready: false })).toEqual({ id: 'n1', incarnation: engine.incarnation, clusterVersion: 0, keys: 0, bytes: 0 })
      await node.putCluster(cluster())
      expect(await node.health({ ready: true })).toEqual({ id: 'n1', incarnation: engine.incarnation, clusterVersion: 1, keys: 0, bytes: 0 })
    })

    it('putCluster: a newer version installs, an older one or a changed one under the same version is KV_CLUSTER_VERSION_CONFLICT', async () => {
      const { node } = await open()
      await node.putCluster(cluster())
      await expect(node.putCluster({ ...cluster(), stores: [storeDef({ name: 'kv', n: 1, r: 1, w: 1 })] })).rejects.toMatchObject({
        code: 'KV_CLUSTER_VERSION_CONFLICT',
      })
      await node.putCluster(cluster(3))
      await expect(node.putCluster(cluster(2))).rejects.toMatchObject({ code: 'KV_CLUSTER_VERSION_CONFLICT' })
      await expect(node.putCluster({ ...cluster(4), partitions: 16, assignment: Array.from({ length: 16 }, () => 'n1') })).rejects.toMatchObject({
        code: 'KV_INVALID_INPUT',
      })
      expect(await node.getCluster()).toEqual(cluster(3))
      expect((await node.health()).clusterVersion).toBe(3)
    })

    it('hints: kept per target, listed in id order after `afterId`, merged with a new seq, and deleted only by an ack of the current seq', async () => {
      const { node } = await open()
      const hint = (key: string, value: string, counter = 1) => ({
        store: 'kv',
        key: utf8(key),
        siblings: [{ ...foreign(utf8(value), counter), dot: { actor: 'writer', counter } }],
      })
      expect(await node.putHints('n2', [hint('a', 'one'), hint('b', 'two')])).toEqual([
        { ok: true, value: null },
        { ok: true, value: null },
      ])
      await node.putHints('n3', [hint('c', 'three')])
      const listed = await node.listHints('n2', 10, 0)
      expect(listed.map((h) => fromUtf8(h.key))).toEqual(['a', 'b'])
      const [a, b] = listed as [(typeof listed)[0], (typeof listed)[0]]
      expect((await node.listHints('n2', 10, a.id)).map((h) => fromUtf8(h.key))).toEqual(['b'])
      expect(await node.listHints('n2', 1, 0)).toHaveLength(1)
      expect((await node.hintTargets()).map((t) => [t.target, t.count]).sort()).toEqual([
        ['n2', 2],
        ['n3', 1],
      ])
      // A hint merged into after it was listed has a new seq: the old ack must not delete it.
      await node.putHints('n2', [hint('a', 'again', 2)])
      const merged = (await node.listHints('n2', 10, 0))[0]
      expect(merged?.seq).not.toBe(a.seq)
      expect(values(merged?.siblings ?? [])).toEqual(['again', 'one'])
      expect(
        await node.deleteHints('n2', [
          { id: a.id, seq: a.seq },
          { id: b.id, seq: b.seq },
        ]),
      ).toBe(1)
      expect((await node.listHints('n2', 10, 0)).map((h) => fromUtf8(h.key))).toEqual(['a'])
      await expect(node.listHints('n2', 0, 0)).rejects.toMatchObject({ code: 'KV_INVALID_INPUT' })
    })

    it('Merkle roots, branches and leaves have their shapes; a bad partition or branch is KV_INVALID_INPUT', async () => {
      const { node } = await open()
      await coordinate(node, 'kv', [write('probe', 'x')])
      const h = keyHash(utf8('probe'))
      const part = partitionOfHash(h, Q)
      expect(await node.merkleRoots('kv')).toHaveLength(Q * HASH_BYTES)
      const branches = await node.merkleBranches('kv', part)
      expect(branches).toHaveLength(32 * HASH_BYTES)
      expect(toHex(branches)).not.toBe('0'.repeat(64 * HASH_BYTES))
      expect(await node.merkleLeaves('kv', part, 31)).toHaveLength(BRANCH_FANOUT * HASH_BYTES)
      const invalid = { code: 'KV_INVALID_INPUT' }
      for (const p of [Q, -1, 1.5]) await expect(node.merkleBranches('kv', p)).rejects.toMatchObject(invalid)
      for (const [p, b] of [
        [0, 32],
        [0, -1],
        [Q, 0],
      ] as const)
        await expect(node.merkleLeaves('kv', p, b)).rejects.toMatchObject(invalid)
    })

    it('scan pages through a partition with limit and next; heads only leaves values out', async () => {
      const { node } = await open()
      const keys = Array.from({ length: 60 }, (_, i) => `s${i}`)
      await coordinate(
        node,
        'kv',
        keys.map((k) => write(k, `v-${k}`)),
      )
      const part = partitionOfHash(keyHash(utf8('s0')), Q)
      const inPart = keys.filter((k) => partitionOfHash(keyHash(utf8(k)), Q) === part)
      const seen: string[] = []
      let after: Uint8Array | undefined
      for (let page = 0; page < 100; page++) {
        const res = await node.scan('kv', after ? { partition: part, limit: 3, after } : { partition: part, limit: 3 })
        expect(res.items.length).toBeLessThanOrEqual(3)
        for (const it of res.items) expect(values(it.siblings)).toEqual([`v-${fromUtf8(it.key)}`])
        seen.push(...res.items.map((it) => fromUtf8(it.key)))
        if (!res.next) break
        after = res.next
      }
      expect(seen.sort()).toEqual(inPart.sort())
      const heads = await node.scan('kv', { partition: part, limit: 1, headsOnly: true })
      expect(heads.items[0]?.siblings.map((v) => v.value?.length)).toEqual([0])
      await expect(node.scan('kv', { partition: Q, limit: 3 })).rejects.toMatchObject({ code: 'KV_INVALID_INPUT' })
    })

    it('tombstones are listed by partition, and reap removes only keys whose set is still exactly the listed tombstones', async () => {
      const { node } = await open()
      const sets = await coordinate(
        node,
        'kv',
        ['t1', 't2', 'alive'].map((k) => write(k, 'v')),
      )
      await coordinate(
        node,
        'kv',
        ['t1', 't2'].map((k, i) => write(k, null, setContext(ok(sets[i]).siblings))),
      )
      const tombstones: KeySet[] = []
      for (let p = 0; p < Q; p++) tombstones.push(...(await node.listTombstones('kv', { partition: p, beforeMs: Date.now() + 60_000, limit: 100 })))
      expect(tombstones.map((t) => fromUtf8(t.key)).sort()).toEqual(['t1', 't2'])
      // t2 changes after it was listed: its reap must keep it. `alive` was never a tombstone.
      await coordinate(node, 'kv', [write('t2', 'back')])
      const aliveSet = ok(sets[2]).siblings
      expect(await node.reap('kv', [...tombstones, { key: utf8('alive'), siblings: aliveSet }])).toBe(1)
      expect(await read(node, 'kv', 't1')).toEqual([])
      expect(values(await read(node, 'kv', 't2'))).toEqual(['back', null])
      expect(values(await read(node, 'kv', 'alive'))).toEqual(['v'])
    })

    it('health names the node, its incarnation, the cluster version it holds, and the keys and bytes it stores', async () => {
      const { node, engine } = await open()
      expect(await node.health()).toEqual({ id: 'n1', incarnation: engine.incarnation, clusterVersion: 1, keys: 0, bytes: 0 })
      await node.batch('kv', { keys: [], coordinates: [write('h1', 'value')], merges: [] })
      const after = await node.health()
      expect(after.keys).toBe(1)
      expect(after.bytes).toBeGreaterThanOrEqual('h1'.length + 'value'.length)
    })
  })
}
