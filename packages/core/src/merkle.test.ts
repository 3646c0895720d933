import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { BRANCHES, BRANCH_FANOUT, HASH_BYTES, SEGMENTS, ZERO_HASH, branchesOf, diffHashes, keyDigest, xorAll, xorHash } from './merkle.js'
import { keyHash, segmentOfHash } from './ring.js'
import type { SiblingSet, Version } from './versions.js'
import { toHex, utf8 } from './bytes.js'

const Q = 256
const hash = fc.uint8Array({ minLength: HASH_BYTES, maxLength: HASH_BYTES })
const leaves = fc.uint8Array({ minLength: SEGMENTS * HASH_BYTES, maxLength: SEGMENTS * HASH_BYTES })
const version = (actor: string, counter: number, value: string | null = 'v'): Version => ({
  dot: { actor, counter },
  context: {},
  timestamp: 0,
  value: value === null ? null : utf8(value),
})
// A small pool of states so that keys are written, overwritten and deleted again.
const SETS: SiblingSet[] = [[], [version('a1', 1)], [version('a1', 2)], [version('a1', 2), version('b1', 1)], [version('c3', 7, null)]]

const hashAt = (packed: Uint8Array, i: number): Uint8Array => packed.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES)
const leafOf = (k: Uint8Array): number => segmentOfHash(keyHash(k), Q)

/** `count` keys that fall in the same leaf, so several keys XOR into one leaf. */
function collidingKeys(count: number): Uint8Array[] {
  const byLeaf = new Map<number, Uint8Array[]>()
  for (let i = 0; ; i++) {
    const k = utf8(`key-${i}`)
    const group = [...(byLeaf.get(leafOf(k)) ?? []), k]
    if (group.length === count) return group
    byLeaf.set(leafOf(k), group)
  }
}

describe('keyDigest', () => {
  it('is zero for an empty set, as if the key were absent', () => {
    expect(keyDigest(utf8('k'), [])).toEqual(new Uint8Array(HASH_BYTES))
    expect(ZERO_HASH).toEqual(new Uint8Array(HASH_BYTES))
  })

  it('depends on the key and the dots, not on the values', () => {
    const k = utf8('k')
    const d = keyDigest(k, [version('a1', 1, 'x')])
    expect(d).toHaveLength(HASH_BYTES)
    expect(d).not.toEqual(ZERO_HASH)
    expect(keyDigest(k, [version('a1', 1, 'y')])).toEqual(d)
    expect(keyDigest(k, [version('a1', 2, 'x')])).not.toEqual(d)
    expect(keyDigest(utf8('j'), [version('a1', 1, 'x')])).not.toEqual(d)
  })
})

describe('leaf maintenance', () => {
  it('updating a leaf by XOR of old and new digests equals recomputing it from every key', () => {
    const keys = [...collidingKeys(3), ...['a', 'b', 'c'].map(utf8)]
    const write = fc.record({ key: fc.constantFrom(...keys), set: fc.nat({ max: SETS.length - 1 }) })
    fc.assert(
      fc.property(fc.array(write, { maxLength: 40 }), (writes) => {
        const state = new Map<string, { key: Uint8Array; set: SiblingSet }>()
        const live = new Uint8Array(SEGMENTS * HASH_BYTES)
        for (const w of writes) {
          const old = state.get(toHex(w.key))?.set ?? []
          const next = SETS[w.set] as SiblingSet
          const delta = xorHash(keyDigest(w.key, old), keyDigest(w.key, next))
          const leaf = leafOf(w.key)
          live.set(xorHash(hashAt(live, leaf), delta), leaf * HASH_BYTES)
          state.set(toHex(w.key), { key: w.key, set: next })
        }
        const rebuilt = new Uint8Array(SEGMENTS * HASH_BYTES)
        for (const { key: k, set } of state.values()) rebuilt.set(xorHash(hashAt(rebuilt, leafOf(k)), keyDigest(k, set)), leafOf(k) * HASH_BYTES)
        expect(toHex(live)).toBe(toHex(rebuilt))
        // The root (XOR of all leaves) equals the XOR of the branches.
        expect(xorAll(branchesOf(live))).toEqual(xorAll(live))
      }),
      { numRuns: 200 },
    )
  })
})

describe('hash arithmetic', () => {
  it('xorHash is commutative and its own inverse', () => {
    fc.assert(
      fc.property(hash, hash, (a, b) => {
        expect(xorHash(a, b)).toEqual(xorHash(b, a))
        expect(xorHash(xorHash(a, b), b)).toEqual(a)
        expect(xorHash(a, a)).toEqual(ZERO_HASH)
      }),
      { numRuns: 200 },
    )
  })

  it('diffHashes finds exactly the indices that differ', () => {
    const changes = fc.uniqueArray(fc.record({ index: fc.nat({ max: 63 }), byte: fc.nat({ max: HASH_BYTES - 1 }), flip: fc.integer({ min: 1, max: 255 }) }), {
      selector: (c) => c.index,
      maxLength: 20,
    })
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64 * HASH_BYTES, maxLength: 64 * HASH_BYTES }), changes, (a, cs) => {
        const b = Uint8Array.from(a)
        for (const c of cs) b[c.index * HASH_BYTES + c.byte] = (b[c.index * HASH_BYTES + c.byte] as number) ^ c.flip
        expect(diffHashes(a, b)).toEqual(cs.map((c) => c.index).sort((x, y) => x - y))
        expect(diffHashes(a, a)).toEqual([])
      }),
      { numRuns: 200 },
    )
  })

  it('branchesOf XORs each group of 32 consecutive leaves', () => {
    expect(BRANCHES * BRANCH_FANOUT).toBe(SEGMENTS)
    fc.assert(
      fc.property(leaves, (packed) => {
        const branches = branchesOf(packed)
        expect(branches).toHaveLength(BRANCHES * HASH_BYTES)
        for (let b = 0; b < BRANCHES; b++) {
          let acc: Uint8Array = new Uint8Array(HASH_BYTES)
          for (let i = 0; i < BRANCH_FANOUT; i++) acc = xorHash(acc, hashAt(packed, b * BRANCH_FANOUT + i))
          expect(hashAt(branches, b)).toEqual(acc)
        }
      }),
      { numRuns: 50 },
    )
  })
})
