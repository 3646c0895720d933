import { describe, expect, it } from 'vitest'
import { type SiblingSet, resolveSets } from '@kvorum/core'
import { replicasToRepair } from './read-repair.js'

const v = (actor: string, counter: number, context: Record<string, number> = {}): SiblingSet => [
  { dot: { actor, counter }, context, timestamp: 1, value: new Uint8Array([counter]) },
]

describe('read repair chooses replicas without a cluster', () => {
  it('repairs a replica behind the merged set, and none that is current', () => {
    const old = v('a', 1)
    const next = v('a', 2, { a: 1 })
    const replies = new Map([
      ['n1', next],
      ['n2', old],
      ['n3', next],
    ])
    const merged = resolveSets('siblings', ...replies.values())
    expect(replicasToRepair('siblings', replies, merged, () => [])).toEqual({ repair: ['n2'], skipped: 0 })
  })

  it('skips a replica behind only by a set this client is already sending it', () => {
    const old = v('a', 1)
    const next = v('a', 2, { a: 1 })
    const replies = new Map([
      ['n1', next],
      ['n2', old],
    ])
    const merged = resolveSets('siblings', ...replies.values())
    expect(replicasToRepair('siblings', replies, merged, (node) => (node === 'n2' ? [next] : []))).toEqual({ repair: [], skipped: 1 })
    // What is on its way does not cover what the replica lacks: repair it.
    expect(replicasToRepair('siblings', replies, merged, (node) => (node === 'n2' ? [v('b', 7)] : []))).toEqual({ repair: ['n2'], skipped: 0 })
  })
})
