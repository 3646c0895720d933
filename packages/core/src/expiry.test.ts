import { describe, expect, it } from 'vitest'
import { goneFromMs, isExpired, isGone, unexpired } from './expiry.js'
import { coordinatedSet, mergeSets, type Version } from './versions.js'

const bytes = (s: string) => new TextEncoder().encode(s)
const base: Version = { dot: { actor: 'a', counter: 1 }, context: {}, timestamp: 1_000, value: bytes('v') }

describe('isExpired', () => {
  it('never expires a version without expiresAt', () => {
    expect(isExpired(base, Number.MAX_SAFE_INTEGER)).toBe(false)
  })

  it('expires a version once the clock reaches expiresAt, not before', () => {
    const v: Version = { ...base, expiresAt: 5_000 }
    expect(isExpired(v, 4_999)).toBe(false)
    expect(isExpired(v, 5_000)).toBe(true)
    expect(isExpired(v, 6_000)).toBe(true)
  })
})

describe('expired versions in sibling sets', () => {
  const old: Version = { dot: { actor: 'a', counter: 1 }, context: {}, timestamp: 1, value: bytes('old') }
  // Written over `old` (its context covers it), with a ttl.
  const expiring: Version = { dot: { actor: 'a', counter: 2 }, context: { a: 1 }, timestamp: 2, value: bytes('new'), expiresAt: 100 }
  // Concurrent with `expiring`, never expires.
  const other: Version = { dot: { actor: 'b', counter: 1 }, context: { a: 1 }, timestamp: 3, value: bytes('other') }

  it('an expired version still covers its predecessor in a merge, so the old value does not read again', () => {
    const merged = mergeSets([old], [expiring])
    expect(merged).toEqual([expiring])
    expect(unexpired(merged, 200)).toEqual([])
    expect(isGone(merged, 200)).toBe(true)
  })

  it('one sibling expiring leaves its concurrent sibling', () => {
    const merged = mergeSets([expiring], [other])
    expect(merged).toHaveLength(2)
    expect(unexpired(merged, 200)).toEqual([other])
    expect(isGone(merged, 200)).toBe(false)
  })

  it('the coordinator step keeps the expiry on the new version, in both conflict modes', () => {
    for (const mode of ['siblings', 'lww'] as const) {
      const next = coordinatedSet(mode, [old], { value: bytes('x'), context: { a: 1 }, timestamp: 5, expiresAt: 50 }, { actor: 'a', counter: 2 })
      expect(next).toHaveLength(1)
      expect(next[0]?.expiresAt).toBe(50)
      const plain = coordinatedSet(mode, [], { value: bytes('x'), context: {}, timestamp: 5 }, { actor: 'a', counter: 3 })
      expect(plain[0] && 'expiresAt' in plain[0]).toBe(false)
    }
  })

  it('a set reads as absent from its latest expiry; a value that never expires keeps it present', () => {
    const tomb: Version = { dot: { actor: 'c', counter: 1 }, context: {}, timestamp: 1, value: null }
    expect(goneFromMs([tomb], 40)).toBe(40)
    expect(goneFromMs([tomb, expiring], 40)).toBe(100)
    expect(goneFromMs([expiring, { ...other, expiresAt: 300 }], 40)).toBe(300)
    expect(goneFromMs([expiring, other], 40)).toBeNull()
  })
})
