import { describe, expect, it } from 'vitest'
import { isExpired } from './expiry.js'
import type { Version } from './versions.js'

const base: Version = { dot: { actor: 'a', counter: 1 }, context: {}, timestamp: 1_000, value: new Uint8Array([1]) }

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
