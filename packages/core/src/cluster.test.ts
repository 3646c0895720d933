import { describe, expect, it } from 'vitest'
import { type ClusterDef, type NodeDef, STORE_DEFAULTS, findStore, storeDef, validateCluster } from './cluster.js'
import { initialAssignment } from './ring.js'
import { InvalidInputError, UnknownStoreError } from './errors.js'

const nodes: NodeDef[] = [1, 2, 3].map((i) => ({ id: `n${i}`, url: `http://127.0.0.1:${7070 + i}`, zone: `z${i}` }))
const good: ClusterDef = {
  version: 1,
  partitions: 16,
  nodes,
  assignment: initialAssignment(nodes, 16),
  stores: [storeDef({ name: 'users' }), storeDef({ name: 'carts', n: 2, r: 1, w: 1, conflict: 'lww' })],
}

/** A copy of the good definition (as untyped JSON would arrive) with some fields replaced. */
const edit = (changes: Record<string, unknown>): unknown => ({ ...structuredClone(good), ...changes })
const withStore = (changes: Record<string, unknown>): unknown => edit({ stores: [{ ...storeDef({ name: 's' }), ...changes }] })

function rejects(def: unknown, message: RegExp): void {
  expect(() => validateCluster(def)).toThrow(InvalidInputError)
  expect(() => validateCluster(def)).toThrow(message)
}

describe('validateCluster', () => {
  it('accepts a good definition and returns it', () => {
    expect(validateCluster(structuredClone(good))).toEqual(good)
    expect(validateCluster(edit({ partitions: 1, assignment: ['n2'], stores: [storeDef({ name: 'one', n: 1, r: 1, w: 1 })] }))).toBeTruthy()
  })

  it('rejects a partition count that is not a power of two or too large', () => {
    for (const partitions of [0, 12, 100, 1.5, -16, '16', 2 ** 17])
      rejects(edit({ partitions, assignment: Array(12).fill('n1') }), /partitions must be a power of two/)
  })

  it('rejects an assignment of the wrong length or naming an unknown node', () => {
    rejects(edit({ assignment: good.assignment.slice(1) }), /owner for each of the 16/)
    rejects(edit({ assignment: [...good.assignment.slice(1), 'n9'] }), /unknown node n9/)
  })

  it('rejects bad nodes: duplicate id, bad id, bad url, bad zone, none at all', () => {
    rejects(edit({ nodes: [...nodes, { id: 'n1', url: 'http://127.0.0.1:9999' }] }), /node id n1 appears twice/)
    rejects(edit({ nodes: [...nodes, { id: 'n 4', url: 'http://127.0.0.1:9999' }] }), /every node needs an id/)
    for (const url of ['127.0.0.1:7070', 'http://a b', '', 7070]) rejects(edit({ nodes: [...nodes, { id: 'n4', url }] }), /url must be/)
    rejects(edit({ nodes: [...nodes, { id: 'n4', url: 'http://x:1', zone: 'a b' }] }), /zone must match/)
    rejects(edit({ nodes: [] }), /1\.\.1024 nodes/)
  })

  it('rejects bad stores: r > n, n over the node count, bad name, duplicate name, bad conflict mode', () => {
    rejects(withStore({ n: 2, r: 3 }), /r must be 1\.\.n/)
    rejects(withStore({ w: 4 }), /w must be 1\.\.n/)
    rejects(withStore({ n: 4 }), /n must be 1\.\.3/)
    rejects(withStore({ pw: 3, w: 2 }), /pw must be 0\.\.w/)
    for (const name of ['', 'a b', 'x'.repeat(65), 'ü']) rejects(withStore({ name }), /store name must match/)
    rejects(edit({ stores: [storeDef({ name: 's' }), storeDef({ name: 's' })] }), /store s appears twice/)
    rejects(withStore({ conflict: 'newest' }), /conflict must be/)
  })

  it('rejects a version that is not a positive integer and things that are not objects', () => {
    rejects(edit({ version: 0 }), /version/)
    rejects(null, /JSON object/)
    rejects('cluster', /JSON object/)
  })
})

describe('stores', () => {
  it('storeDef fills in the documented defaults', () => {
    expect(storeDef({ name: 'x' })).toEqual({ name: 'x', ...STORE_DEFAULTS })
    expect(STORE_DEFAULTS).toMatchObject({ n: 3, r: 2, w: 2, pr: 0, pw: 1, conflict: 'siblings', maxSiblings: 100, maxValueBytes: 1024 * 1024 })
  })

  it('findStore finds a store by name or throws UnknownStoreError', () => {
    expect(findStore(good, 'carts').conflict).toBe('lww')
    expect(() => findStore(good, 'nope')).toThrow(UnknownStoreError)
    expect(() => findStore(good, 'nope')).toThrow(expect.objectContaining({ code: 'KV_UNKNOWN_STORE' }))
  })
})

describe('validateCluster: replicas need partition owners', () => {
  it('refuses n larger than the number of nodes that own partitions (they could never all be replicas)', async () => {
    const { initialAssignment, storeDef } = await import('./index.js')
    const nodes = Array.from({ length: 5 }, (_, i) => ({ id: `n${i + 1}`, url: `http://127.0.0.1:${7000 + i}` }))
    // Two partitions for five nodes: only two nodes own anything.
    const def = { version: 1, partitions: 2, nodes, assignment: initialAssignment(nodes, 2), stores: [storeDef({ name: 's', n: 3 })] }
    expect(() => validateCluster(def)).toThrow(/n must be 1..2/)
    expect(validateCluster({ ...def, stores: [storeDef({ name: 's', n: 2, r: 1, w: 1 })] }).stores[0]?.n).toBe(2)
  })
})
