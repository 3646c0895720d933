import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { type VersionVector, compareDots, counterOf, covers, descends, join, withDot } from './clock.js'

const actor = fc.constantFrom('a1', 'a2', 'b1', 'b2', 'c3')
const vv: fc.Arbitrary<VersionVector> = fc
  .uniqueArray(fc.tuple(actor, fc.integer({ min: 1, max: 20 })), { selector: ([a]) => a })
  .map((entries) => Object.fromEntries(entries))
const dot = fc.record({ actor, counter: fc.integer({ min: 1, max: 20 }) })

describe('version vectors', () => {
  it('join is the least upper bound: it descends from every input and from nothing more', () => {
    fc.assert(
      fc.property(vv, vv, (a, b) => {
        const j = join(a, b)
        expect(descends(j, a) && descends(j, b)).toBe(true)
        // Every entry of the join comes from one of the inputs.
        for (const [actorId, n] of Object.entries(j)) expect(n).toBe(Math.max(counterOf(a, actorId), counterOf(b, actorId)))
      }),
      { numRuns: 200 },
    )
  })

  it('join is commutative, associative and idempotent', () => {
    fc.assert(
      fc.property(vv, vv, vv, (a, b, c) => {
        expect(join(a, b)).toEqual(join(b, a))
        expect(join(join(a, b), c)).toEqual(join(a, join(b, c)))
        expect(join(a, a)).toEqual(a)
      }),
      { numRuns: 200 },
    )
  })

  it('withDot covers the dot and changes nothing when the dot is already covered', () => {
    fc.assert(
      fc.property(vv, dot, (v, d) => {
        const w = withDot(v, d)
        expect(covers(w, d)).toBe(true)
        expect(descends(w, v)).toBe(true)
        if (covers(v, d)) expect(w).toBe(v)
      }),
      { numRuns: 200 },
    )
  })

  it('covers agrees with descends on a single-entry vector', () => {
    fc.assert(
      fc.property(vv, dot, (v, d) => {
        expect(covers(v, d)).toBe(descends(v, { [d.actor]: d.counter }))
      }),
      { numRuns: 200 },
    )
  })

  it('compareDots is a total order: antisymmetric and zero only on equal dots', () => {
    fc.assert(
      fc.property(dot, dot, (a, b) => {
        expect(Math.sign(compareDots(a, b)) + Math.sign(compareDots(b, a))).toBe(0)
        expect(compareDots(a, b) === 0).toBe(a.actor === b.actor && a.counter === b.counter)
      }),
      { numRuns: 200 },
    )
  })

  // Regression: actors match [0-9a-z-]{1,64}, so `constructor` is a legal
  // actor; reading it through the prototype made join return NaN and made an
  // empty vector "descend" from {constructor: 5}.
  it('treats an actor named like an Object.prototype member as an ordinary actor', () => {
    expect(join({}, { constructor: 3 })).toEqual({ constructor: 3 })
    expect(descends({}, { constructor: 5 })).toBe(false)
    expect(covers({}, { actor: 'constructor', counter: 1 })).toBe(false)
    expect(counterOf({}, 'constructor')).toBe(0)
  })
})
