import { describe, expect, it } from 'vitest'
import { QuorumTracker } from './quorum.js'
import { afterCoordinatorFailure, firstAsks, nextFallback, quorumVerdict, upFirst } from './verdicts.js'

const failure = { node: 'n', code: 'KV_NODE_UNAVAILABLE' as const, message: 'down' }

describe('the rounds decide without a cluster', () => {
  it('a write with w=2 of 3 is met on the second ack, impossible after two failures, a timeout at the deadline', () => {
    const met = new QuorumTracker({ total: 2, primaries: 0 }, { total: 3, primaries: 3 })
    met.ack(true)
    expect(quorumVerdict(met, false)).toBe('wait')
    expect(quorumVerdict(met, true)).toBe('timeout')
    met.ack(true)
    expect(quorumVerdict(met, true)).toBe('met')

    const lost = new QuorumTracker({ total: 2, primaries: 0 }, { total: 3, primaries: 3 })
    lost.ack(true)
    lost.fail(true, failure)
    expect(quorumVerdict(lost, false)).toBe('wait')
    lost.fail(true, failure)
    expect(quorumVerdict(lost, false)).toBe('impossible')
  })

  it('a hint counts toward w but not toward pw', () => {
    const t = new QuorumTracker({ total: 2, primaries: 2 }, { total: 3, primaries: 3 })
    t.ack(true)
    t.fail(true, failure)
    t.expect(false)
    t.ack(false)
    expect(t.acks).toBe(2)
    expect(quorumVerdict(t, false)).toBe('wait')
    t.fail(true, failure)
    expect(quorumVerdict(t, false)).toBe('impossible')
  })

  it('a coordinator failure that may have applied ends the put as indeterminate; a refused one tries the next primary', () => {
    expect(afterCoordinatorFailure(true, true)).toBe('fatal')
    expect(afterCoordinatorFailure(false, true)).toBe('indeterminate')
    expect(afterCoordinatorFailure(false, false)).toBe('next')
  })

  it('hints go to the first unused fallback that is up, else nowhere (parked on the coordinator)', () => {
    const up = (n: string) => n !== 'n5'
    expect(nextFallback(['n4', 'n5', 'n6'], new Set(), up)).toBe('n4')
    expect(nextFallback(['n4', 'n5', 'n6'], new Set(['n4']), up)).toBe('n6')
    expect(nextFallback(['n4', 'n5'], new Set(['n4']), up)).toBeNull()
  })

  it('replicas that are up are asked first, in preference order', () => {
    expect(upFirst(['n1', 'n2', 'n3'], (n) => n !== 'n1')).toEqual(['n2', 'n3', 'n1'])
  })

  it('a read asks r replicas (at least pr), or all with readFromAll, never more than exist', () => {
    expect(firstAsks(3, 2, 0, false)).toBe(2)
    expect(firstAsks(3, 1, 1, false)).toBe(1)
    expect(firstAsks(3, 2, 0, true)).toBe(3)
    expect(firstAsks(2, 3, 3, false)).toBe(2)
  })
})
