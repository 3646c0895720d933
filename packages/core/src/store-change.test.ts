import { describe, expect, it } from 'vitest'
import { type ClusterDef, storeDef } from './cluster.js'
import { initialAssignment } from './ring.js'
import { alterStore, createStore, unionOfStores } from './store-change.js'

const nodes = ['n1', 'n2', 'n3'].map((id) => ({ id, url: `mem://${id}` }))
const base: ClusterDef = { version: 2, partitions: 8, nodes, assignment: initialAssignment(nodes, 8), stores: [storeDef({ name: 'default' })] }
const withStore = (s: Parameters<typeof storeDef>[0]): ClusterDef => ({ ...base, stores: [...base.stores, storeDef(s)] })

describe('unionOfStores', () => {
  it('joins the stores of definitions that differ only in stores, the same whichever order they come in', () => {
    const a = withStore({ name: 'alpha' })
    const b = withStore({ name: 'beta', w: 3 })
    expect(unionOfStores([a, b])?.stores.map((s) => s.name)).toEqual(['default', 'alpha', 'beta'])
    expect(unionOfStores([b, a])?.stores.map((s) => s.name)).toEqual(['default', 'beta', 'alpha'])
    // A store with other settings on other nodes (an alter raced): refused, not guessed.
    const raced = [withStore({ name: 'alpha', tombstoneGraceMs: 604_800_000 }), withStore({ name: 'alpha', tombstoneGraceMs: 86_400_000 })]
    expect(() => unionOfStores(raced)).toThrow(/store alpha differs between nodes .*tombstoneGraceMs=604800000\|86400000/)
  })

  it('is null for definitions that differ in more than stores, and refuses one store with two n', () => {
    expect(unionOfStores([withStore({ name: 'alpha' }), { ...withStore({ name: 'beta' }), assignment: [...base.assignment].reverse() }])).toBeNull()
    expect(unionOfStores([withStore({ name: 'alpha' }), { ...withStore({ name: 'beta' }), version: 3 }])).toBeNull()
    expect(() => unionOfStores([withStore({ name: 'alpha', n: 3 }), withStore({ name: 'alpha', n: 2, r: 2, w: 2 })])).toThrow(
      /store alpha differs between nodes after two store commands ran at once \(n=3\|2\)/,
    )
  })
})

describe('store ttlMs', () => {
  it('is set at create, changed and removed (ttlMs=0) by alter, and refused out of range', () => {
    const created = createStore(base, { name: 'sessions', ttlMs: 60_000 })
    expect(created.stores.find((s) => s.name === 'sessions')?.ttlMs).toBe(60_000)
    const longer = alterStore(created, 'sessions', { ttlMs: 3_600_000 })
    expect(longer.stores.find((s) => s.name === 'sessions')?.ttlMs).toBe(3_600_000)
    const none = alterStore(longer, 'sessions', { ttlMs: 0 })
    expect(none.stores.find((s) => s.name === 'sessions')).not.toHaveProperty('ttlMs')
    // The same create run again is a no-op, whether ttlMs=0 is spelled or not.
    expect(createStore(base, { name: 'default', ttlMs: 0 })).toBe(base)
    expect(() => alterStore(created, 'sessions', { ttlMs: -1 })).toThrow(/ttlMs must be 1\.\./)
    expect(() => createStore(base, { name: 'x', ttlMs: 1.5 })).toThrow(/ttlMs must be 1\.\./)
  })

  it('names ttlMs when it differs between nodes, set on one side only', () => {
    const raced = [withStore({ name: 'alpha', ttlMs: 1000 }), withStore({ name: 'alpha' })]
    expect(() => unionOfStores(raced)).toThrow(/ttlMs=1000\|undefined/)
  })
})
