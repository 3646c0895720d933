import { describe, expect, it } from 'vitest'
import { mutate, mutations } from './mutate.case.js'
import fc from 'fast-check'
import {
  Reader,
  Writer,
  decodeContext,
  decodeSet,
  encodeContext,
  encodeSet,
  readClock,
  readSet,
  readVersion,
  writeClock,
  writeSet,
  writeVersion,
} from './codec.js'
import { type VersionVector, join } from './clock.js'
import { type Version, setContext } from './versions.js'
import { InvalidInputError } from './errors.js'

const actor = fc.oneof(fc.constantFrom('a1', 'b2', 'c3', 'constructor'), fc.stringMatching(/^[0-9a-z-]{1,64}$/))
const counter = fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }))
const clock: fc.Arbitrary<VersionVector> = fc
  .uniqueArray(fc.tuple(actor, counter), { selector: ([a]) => a, maxLength: 6 })
  .map((entries) => Object.fromEntries(entries))
const version: fc.Arbitrary<Version> = fc.record(
  {
    dot: fc.record({ actor, counter }),
    context: clock,
    timestamp: fc.maxSafeNat(),
    value: fc.option(fc.uint8Array({ maxLength: 40 }), { nil: null }),
    expiresAt: fc.maxSafeNat(),
  },
  { requiredKeys: ['dot', 'context', 'timestamp', 'value'] },
)
const set = fc.uniqueArray(version, { selector: (v) => `${v.dot.actor}:${v.dot.counter}`, maxLength: 5 })

/** Every error the decoders raise must be an InvalidInputError; anything else is a crash waiting to happen in a node. */
function onlyInvalidInput(decode: () => unknown): void {
  try {
    decode()
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidInputError)
    expect((e as InvalidInputError).code).toBe('KV_INVALID_INPUT')
  }
}

function expectInvalid(decode: () => unknown, message?: RegExp): void {
  expect(decode).toThrow(InvalidInputError)
  if (message) expect(decode).toThrow(message)
}

const frameOf = (body: (w: Writer) => void): Uint8Array => {
  const w = new Writer()
  body(w)
  return w.finish()
}

describe('varints', () => {
  it('round-trip every safe integer in at most 8 bytes', () => {
    fc.assert(
      fc.property(fc.oneof(fc.nat({ max: 300 }), fc.maxSafeNat()), (n) => {
        const bytes = frameOf((w) => w.uint(n))
        expect(bytes.length).toBeLessThanOrEqual(8)
        const r = new Reader(bytes)
        expect(r.uint()).toBe(n)
        expect(r.done).toBe(true)
      }),
      { numRuns: 200 },
    )
  })

  it('rejects a varint that never ends or exceeds 2^53', () => {
    expectInvalid(() => new Reader(new Uint8Array(9).fill(0xff)).uint(), /varint too long/)
    expectInvalid(() => new Reader(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])).uint(), /varint too long/)
    expectInvalid(() => new Reader(Uint8Array.from([0x80])).uint(), /runs past the end/)
  })

  // Encoding a negative or fractional number is a programmer error, not bad input.
  it('asserts on numbers it cannot encode', () => {
    for (const n of [-1, 1.5, Number.NaN, 2 ** 53]) expect(() => new Writer().uint(n)).toThrow(/assertion failed/)
  })
})

describe('round trips', () => {
  it('clocks', () => {
    fc.assert(
      fc.property(clock, (vv) => {
        const r = new Reader(frameOf((w) => writeClock(w, vv)))
        expect(readClock(r)).toEqual(vv)
        r.end()
      }),
      { numRuns: 200 },
    )
  })

  it('versions', () => {
    fc.assert(
      fc.property(version, (v) => {
        const r = new Reader(frameOf((w) => writeVersion(w, v)))
        expect(readVersion(r, 40)).toEqual(v)
        r.end()
      }),
      { numRuns: 200 },
    )
  })

  it('a set stored before expiry existed (flag 0 or 1, no expiry) reads the same, and one without expiry encodes to those bytes', () => {
    // Bytes as the encoder before expiry wrote them: a value and a tombstone.
    const old = Uint8Array.of(2, 2, 0x61, 0x31, 1, 5, 0, 0, 1, 9, 2, 0x61, 0x31, 2, 6, 1, 2, 0x61, 0x31, 1, 1)
    const set: Version[] = [
      { dot: { actor: 'a1', counter: 1 }, context: {}, timestamp: 5, value: Uint8Array.of(9) },
      { dot: { actor: 'a1', counter: 2 }, context: { a1: 1 }, timestamp: 6, value: null },
    ]
    expect(decodeSet(old)).toEqual(set)
    expect(encodeSet(set)).toEqual(old)
  })

  it('an expiry travels with a value and with a tombstone', () => {
    const withExpiry: Version[] = [
      { dot: { actor: 'a1', counter: 1 }, context: {}, timestamp: 5, value: Uint8Array.of(9), expiresAt: 1_700_000_000_000 },
      { dot: { actor: 'b2', counter: 1 }, context: {}, timestamp: 6, value: null, expiresAt: 7 },
    ]
    expect(decodeSet(encodeSet(withExpiry))).toEqual(withExpiry)
  })

  it('sibling sets', () => {
    fc.assert(
      fc.property(set, (s) => {
        expect(decodeSet(encodeSet(s))).toEqual(s)
      }),
      { numRuns: 200 },
    )
  })

  it('context tokens, which are base64url', () => {
    fc.assert(
      fc.property(clock, (vv) => {
        const token = encodeContext(vv)
        expect(token).toMatch(/^[A-Za-z0-9_-]+$/)
        expect(decodeContext(token)).toEqual(vv)
      }),
      { numRuns: 200 },
    )
    expect(decodeContext('')).toEqual({})
  })

  // Regression: `constructor` is a legal actor; its clock used to be refused as a
  // duplicate, and a dot of it made setContext produce NaN, which then failed
  // to encode with a plain Error.
  it('an actor named constructor', () => {
    expect(decodeContext(encodeContext({ constructor: 1 }))).toEqual({ constructor: 1 })
    const v: Version = { dot: { actor: 'constructor', counter: 2 }, context: {}, timestamp: 0, value: null }
    const ctx = setContext(decodeSet(encodeSet([v])))
    expect(ctx).toEqual({ constructor: 2 })
    expect(decodeContext(encodeContext(join(ctx, { a1: 1 })))).toEqual({ a1: 1, constructor: 2 })
  })
})

const v1: Version = { dot: { actor: 'a1', counter: 1 }, context: { b2: 3 }, timestamp: 5, value: Uint8Array.from([1, 2, 3]) }

describe('malformed input is InvalidInputError', () => {
  it('truncated frames and trailing bytes', () => {
    fc.assert(
      fc.property(
        set.filter((s) => s.length > 0),
        (s) => {
          const frame = encodeSet(s)
          for (let n = 0; n < frame.length; n++) expectInvalid(() => decodeSet(frame.subarray(0, n)))
          expectInvalid(() => decodeSet(Uint8Array.from([...frame, 0])), /trailing bytes/)
        },
      ),
      { numRuns: 50 },
    )
  })

  it('oversized counts and values', () => {
    const tooManyEntries = frameOf((w) => w.uint(257))
    expectInvalid(() => readClock(new Reader(tooManyEntries)), /over the limit/)
    const three = frameOf((w) => writeSet(w, [v1, { ...v1, dot: { actor: 'a1', counter: 2 } }, { ...v1, dot: { actor: 'a1', counter: 3 } }]))
    expectInvalid(() => readSet(new Reader(three), 10, 2), /siblings: 3 is over the limit of 2/)
    expect(readSet(new Reader(three), 10, 3)).toHaveLength(3)
    expectInvalid(() => readSet(new Reader(three), 2, 3), /value bytes/)
    expectInvalid(() => decodeSet(frameOf((w) => w.uint(100_001))), /over the limit/)
  })

  it('bad actors', () => {
    for (const bad of ['', 'A1', 'a_1', 'a 1', 'x'.repeat(65)]) {
      expectInvalid(() => decodeContext(encodeContext({ [bad]: 1 })))
      expectInvalid(() => decodeSet(encodeSet([{ ...v1, dot: { actor: bad, counter: 1 } }])))
    }
    // Bytes that are not UTF-8 at all.
    expectInvalid(() => readClock(new Reader(Uint8Array.from([1, 1, 0xff, 1]))), /UTF-8/)
  })

  // Actors are read by a fast path for [0-9a-z-]; whatever it does not take still gets the full check's error.
  it('actors on and off the fast path', () => {
    const longest = `${'z9-'.repeat(21)}a`
    const v = { ...v1, dot: { actor: longest, counter: 1 }, context: { [longest]: 1, '0-a': 2 } }
    expect(decodeSet(encodeSet([v]))).toEqual([v])
    expectInvalid(() => decodeSet(encodeSet([{ ...v1, dot: { actor: 'Ab', counter: 1 } }])), /actor "Ab" is not \[0-9a-z-\]\{1,64\}/)
    expectInvalid(() => decodeSet(encodeSet([{ ...v1, dot: { actor: 'é', counter: 1 } }])), /actor "é" is not/)
    expectInvalid(() => decodeSet(encodeSet([{ ...v1, dot: { actor: 'x'.repeat(65), counter: 1 } }])), /actor: 65 is over the limit of 64/)
    // The length says 5, three bytes follow.
    expectInvalid(() => readClock(new Reader(Uint8Array.from([1, 5, 0x61, 0x62, 0x63]))), /actor runs past the end/)
  })

  it('a dot twice in a set of more than eight siblings', () => {
    const many = Array.from({ length: 12 }, (_, i) => ({ ...v1, dot: { actor: 'a1', counter: i + 1 } }))
    expect(decodeSet(encodeSet(many))).toHaveLength(12)
    expectInvalid(() => decodeSet(encodeSet([...many, { ...v1, dot: { actor: 'a1', counter: 7 } }])), /dot a1:7 appears twice/)
  })

  it('counter 0, duplicate actors, duplicate dots, bad value flag', () => {
    expectInvalid(() => readClock(new Reader(frameOf((w) => w.uint(1).string('a1').uint(0)))), /counters start at 1/)
    expectInvalid(() => decodeSet(frameOf((w) => w.uint(1).string('a1').uint(0).uint(0).uint(0).byte(1))), /counters start at 1/)
    expectInvalid(() => readClock(new Reader(frameOf((w) => w.uint(2).string('a1').uint(1).string('a1').uint(2)))), /appears twice/)
    expectInvalid(() => decodeSet(encodeSet([v1, v1])), /appears twice/)
    expectInvalid(() => decodeSet(frameOf((w) => w.uint(1).string('a1').uint(1).uint(0).uint(0).byte(4))), /value flag/)
  })

  it('context tokens that are not base64url or not a clock', () => {
    for (const bad of ['a+b', 'ab==', 'a b', '%%']) expectInvalid(() => decodeContext(bad), /base64url/)
    expectInvalid(() => decodeContext(Buffer.from([1, 1, 0x41, 1]).toString('base64url')), /bad clock/)
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (token) => onlyInvalidInput(() => decodeContext(token))),
      { numRuns: 300 },
    )
  })

  it('fuzzed bytes and mutated frames', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (bytes) => onlyInvalidInput(() => decodeSet(bytes))),
      { numRuns: 300 },
    )
    fc.assert(
      fc.property(set, mutations, (s, ms) => {
        const bytes = mutate(encodeSet(s), ms)
        onlyInvalidInput(() => decodeSet(bytes))
        onlyInvalidInput(() => decodeContext(Buffer.from(bytes).toString('base64url')))
      }),
      { numRuns: 300 },
    )
  })
})
