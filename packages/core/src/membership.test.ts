import { describe, expect, it } from 'vitest'
import { type ClusterDef, storeDef } from './cluster.js'
import { estimateCopy, planChange } from './membership.js'
import { initialAssignment } from './ring.js'

const nodes = ['n1', 'n2', 'n3'].map((id) => ({ id, url: `http://127.0.0.1:${7070 + Number(id.slice(1))}` }))
const def: ClusterDef = { version: 1, partitions: 256, nodes, assignment: initialAssignment(nodes, 256), stores: [storeDef({ name: 'default' })] }

describe('estimateCopy', () => {
  it('prices the replica-partitions a plan moves at the bytes the nodes store per replica-partition, and one step of them as the peak extra disk', () => {
    const plan = planChange(def, { add: [{ id: 'n4', url: 'http://127.0.0.1:7074' }], entriesPerStep: 16 })
    // Every old node replicates all 256 partitions (n=3 of 3 nodes) and stores 256 MB: 1 MB each.
    const e = estimateCopy(plan, { n1: 256e6, n2: 256e6, n3: 256e6 })
    expect(e.bytesPerReplicaPartition).toBe(1e6)
    expect(e.bytesToCopy).toBe(plan.movement.replicaPartitionsMoved * 1e6)
    expect(plan.movement.replicaPartitionsMoved).toBe(192)
    expect(e.peakExtraBytes).toBe(Math.round(e.bytesToCopy / plan.steps))
    expect(e.unknown).toEqual([])
  })

  it('leaves out a node whose size is unknown, and says which', () => {
    const plan = planChange(def, { add: [{ id: 'n4', url: 'http://127.0.0.1:7074' }] })
    const e = estimateCopy(plan, { n1: 512e6, n2: undefined, n3: 512e6 })
    expect(e.bytesPerReplicaPartition).toBe(2e6)
    expect(e.unknown).toEqual(['n2'])
  })
})
