import { describe, expect, it } from 'vitest'
import { type ClusterDef, storeDef } from './cluster.js'
import { initialAssignment } from './ring.js'
import { unionOfStores } from './store-change.js'

const nodes = ['n1', 'n2', 'n3'].map((id) => ({ id, url: `mem://${id}` }))
const base: ClusterDef = { version: 2, partitions: 8, nodes, assignment: initialAssignment(nodes, 8), stores: [storeDef({ name: 'default' })] }
const withStore = (s: Parameters<typeof storeDef>[0]): ClusterDef => ({ ...base, stores: [...base.stores, storeDef(s)] })

describe('unionOfStores', () => {
  it('joins the stores of definitions that differ only in stores, the same whichever order they come in', () => {
    const a = withStore({ name: 'alpha' })
    const b = withStore({ name: 'beta', w: 3 })
    expect(unionOfStores([a, b])?.stores.map((s) => s.name)).toEqual(['default', 'alpha', 'beta'])
    expect(unionOfStores([b, a])?.stores.map((s) => s.name)).toEqual(['default', 'beta', 'alpha'])
    const same = [withStore({ name: 'alpha', r: 1 }), withStore({ name: 'alpha', r: 2 })]
    expect(unionOfStores(same)?.stores[1]).toEqual(unionOfStores([...same].reverse())?.stores[1])
  })

  it('is null for definitions that differ in more than stores, and refuses one store created with two n', () => {
    expect(unionOfStores([withStore({ name: 'alpha' }), { ...withStore({ name: 'beta' }), assignment: [...base.assignment].reverse() }])).toBeNull()
    expect(unionOfStores([withStore({ name: 'alpha' }), { ...withStore({ name: 'beta' }), version: 3 }])).toBeNull()
    expect(() => unionOfStores([withStore({ name: 'alpha', n: 3 }), withStore({ name: 'alpha', n: 2, r: 2, w: 2 })])).toThrow(
      /created twice at once, with n=3 and n=2/,
    )
  })
})
