import { describe, expect, it } from 'vitest'
import { checkRegisters, checkSet } from './set-checker.js'
import type { OpRecord } from './history.js'

let n = 0
function op(partial: Partial<OpRecord> & Pick<OpRecord, 'kind' | 'key' | 'value' | 'outcome'>): OpRecord {
  n++
  return {
    worker: '0',
    op: n,
    workload: partial.kind === 'add' ? 'set' : 'register',
    invokedAt: n * 10,
    completedAt: n * 10 + 5,
    error: null,
    observed: [],
    ...partial,
  }
}

describe('set checker', () => {
  it('counts acknowledged, lost, unexpected and recovered elements', () => {
    const ops = [
      op({ kind: 'add', key: 'c', value: 'a', outcome: 'ok' }),
      op({ kind: 'add', key: 'c', value: 'b', outcome: 'ok' }),
      op({ kind: 'add', key: 'c', value: 'c', outcome: 'info' }),
      op({ kind: 'add', key: 'c', value: 'd', outcome: 'fail' }),
      op({ kind: 'add', key: 'c', value: 'e', outcome: 'pending' }),
    ]
    const check = checkSet(ops, new Map([['c', new Set(['a', 'c', 'x']) as ReadonlySet<string>]]))
    expect(check).toMatchObject({ attempted: 5, acknowledged: 2, lost: 1, unexpected: 1, recovered: 1, failedButPresent: 0 })
    expect(checkSet(ops, new Map([['c', new Set(['a', 'b', 'd'])]]))).toMatchObject({ lost: 0, recovered: 1, failedButPresent: 1 })
    expect(check.examples).toEqual(['lost c/b', 'unexpected c/x'])
  })

  it('an element found in another cart than it was added to is both lost and unexpected', () => {
    const check = checkSet([op({ kind: 'add', key: 'c1', value: 'a', outcome: 'ok' })], new Map([['c2', new Set(['a'])]]))
    expect(check).toMatchObject({ lost: 1, unexpected: 1 })
  })
})

describe('register checker', () => {
  it('a value an acknowledged delete saw may be gone; if it is back, it is resurrected', () => {
    const ops = [op({ kind: 'put', key: 'r', value: 'r=1', outcome: 'ok' }), op({ kind: 'delete', key: 'r', value: '', outcome: 'ok', observed: ['r=1'] })]
    expect(checkRegisters(ops, new Map([['r', []]]))).toMatchObject({ lost: 0, resurrected: 0 })
    expect(checkRegisters(ops, new Map([['r', ['r=1']]]))).toMatchObject({ lost: 0, resurrected: 1 })
  })

  it('an acknowledged value no write saw must be there', () => {
    const ops = [
      op({ kind: 'put', key: 'r', value: 'r=1', outcome: 'ok' }),
      op({ kind: 'put', key: 'r', value: 'r=2', outcome: 'ok', observed: ['r=1'] }),
      op({ kind: 'put', key: 'r', value: 'r=3', outcome: 'ok' }),
    ]
    // r=1 is covered by r=2; r=3 was seen by nobody and is gone: lost.
    expect(checkRegisters(ops, new Map([['r', ['r=2']]]))).toMatchObject({ lost: 1, resurrected: 0, examples: ['lost r=3'] })
  })

  it('a write that failed outright covers nothing; an indeterminate one may have', () => {
    const put = op({ kind: 'put', key: 'r', value: 'r=1', outcome: 'ok' })
    const failed = op({ kind: 'delete', key: 'r', value: '', outcome: 'fail', observed: ['r=1'] })
    const maybe = op({ kind: 'delete', key: 'r', value: '', outcome: 'info', observed: ['r=1'] })
    expect(checkRegisters([put, failed], new Map([['r', []]]))).toMatchObject({ lost: 1 })
    expect(checkRegisters([put, maybe], new Map([['r', []]]))).toMatchObject({ lost: 0 })
    expect(checkRegisters([put, maybe], new Map([['r', ['r=1']]]))).toMatchObject({ resurrected: 0 })
  })

  it('counts unexpected and recovered values, and acknowledged values a later delete did not see', () => {
    const ops = [
      op({ kind: 'put', key: 'r', value: 'r=1', outcome: 'info' }),
      op({ kind: 'put', key: 'r', value: 'r=2', outcome: 'ok' }),
      op({ kind: 'delete', key: 'r', value: '', outcome: 'ok', observed: [] }),
    ]
    expect(checkRegisters(ops, new Map([['r', ['r=1', 'r=2', 'r=9']]]))).toMatchObject({ unexpected: 1, recovered: 1, missedByDelete: 1, lost: 0 })
  })
})
