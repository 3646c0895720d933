import { describe, expect, it } from 'vitest'
import { mutate, mutations } from './mutate.case.js'
import fc from 'fast-check'
import * as m from './messages.js'
import { Writer, encodeSet } from './codec.js'
import type { VersionVector } from './clock.js'
import type { Version } from './versions.js'
import type { CoordinateItem, ItemResult, KeySet } from './protocol.js'
import { InvalidInputError } from './errors.js'
import { ALL_ERROR_CODES } from './error-codes.js'
import { LIMITS } from './limits.js'

const actor = fc.oneof(fc.constantFrom('a1', 'b2', 'c3'), fc.stringMatching(/^[0-9a-z-]{1,64}$/))
const counter = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })
const clock: fc.Arbitrary<VersionVector> = fc
  .uniqueArray(fc.tuple(actor, counter), { selector: ([a]) => a, maxLength: 4 })
  .map((entries) => Object.fromEntries(entries))
const value = fc.option(fc.uint8Array({ maxLength: 32 }), { nil: null })
const version: fc.Arbitrary<Version> = fc.record(
  { dot: fc.record({ actor, counter }), context: clock, timestamp: fc.maxSafeNat(), value, expiresAt: fc.maxSafeNat() },
  { requiredKeys: ['dot', 'context', 'timestamp', 'value'] },
)
const set = fc.uniqueArray(version, { selector: (v) => `${v.dot.actor}:${v.dot.counter}`, maxLength: 3 })
// Mostly short keys, sometimes the longest allowed.
const key = fc.oneof(
  { weight: 9, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 16 }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1024, maxLength: 1024 }) },
)
const batch = <T>(item: fc.Arbitrary<T>): fc.Arbitrary<T[]> => fc.array(item, { maxLength: 4 })
const store = fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/)
const keySet: fc.Arbitrary<KeySet> = fc.record({ key, siblings: set })
const itemError = fc.record(
  { code: fc.constantFrom(...ALL_ERROR_CODES), message: fc.string({ maxLength: 200, unit: 'grapheme' }), clusterVersion: fc.integer({ min: 1, max: 1e9 }) },
  { requiredKeys: ['code', 'message'] },
)
const result = <T>(ok: fc.Arbitrary<T>): fc.Arbitrary<ItemResult<T>> =>
  fc.oneof(fc.record({ ok: fc.constant(true as const), value: ok }), fc.record({ ok: fc.constant(false as const), error: itemError }))

/** One message type: how to make valid values, and its encoder and decoder. */
interface Codec {
  readonly name: string
  readonly frames: fc.Arbitrary<{ readonly value: unknown; readonly frame: Uint8Array }>
  decode(bytes: Uint8Array): unknown
}

function codec<T>(name: string, arb: fc.Arbitrary<T>, encode: (x: T) => Uint8Array, decode: (bytes: Uint8Array) => T): Codec {
  return { name, frames: arb.map((value) => ({ value, frame: encode(value) })), decode }
}

const coordinateItem: fc.Arbitrary<CoordinateItem> = fc.record(
  { key, value, context: clock, timestamp: fc.maxSafeNat(), ttlMs: fc.maxSafeNat() },
  { requiredKeys: ['key', 'value', 'context', 'timestamp'] },
)
const CODECS: Codec[] = [
  codec('coordinate', batch(coordinateItem), m.encodeCoordinate, m.decodeCoordinate),
  codec('key sets', batch(keySet), m.encodeKeySets, m.decodeKeySets),
  codec('hints', batch(fc.record({ store, key, siblings: set })), m.encodeHints, m.decodeHints),
  codec(
    'stored hints',
    batch(fc.record({ id: fc.maxSafeNat(), seq: fc.maxSafeNat(), createdMs: fc.maxSafeNat(), store, key, siblings: set })),
    m.encodeStoredHints,
    m.decodeStoredHints,
  ),
  codec('keys', batch(key), m.encodeKeys, m.decodeKeys),
  codec('set results', batch(result(set)), m.encodeSetResults, m.decodeSetResults),
  codec('ack results', batch(result(fc.constant(null))), m.encodeAckResults, m.decodeAckResults),
  codec(
    'scan request',
    fc.record(
      {
        partition: fc.nat({ max: LIMITS.maxPartitions - 1 }),
        limit: fc.integer({ min: 1, max: 10_000 }),
        segments: fc.array(fc.nat({ max: 1023 }), { minLength: 1, maxLength: 8 }),
        after: key,
        headsOnly: fc.boolean(),
        version: fc.integer({ min: 1, max: 2 ** 40 }),
      },
      // The decoder always states headsOnly, so it is required here.
      { requiredKeys: ['partition', 'limit', 'headsOnly'] },
    ),
    m.encodeScanRequest,
    m.decodeScanRequest,
  ),
  codec('store batch', fc.record({ keys: batch(key), coordinates: batch(coordinateItem), merges: batch(keySet) }), m.encodeStoreBatch, m.decodeStoreBatch),
  codec(
    'store batch results',
    fc.record({
      gets: batch(result(set)),
      coordinates: batch(result(fc.record({ dot: fc.record({ actor, counter }), siblings: set }))),
      merges: batch(result(fc.constant(null))),
    }),
    m.encodeStoreBatchResults,
    m.decodeStoreBatchResults,
  ),
  codec('scan page', fc.record({ items: batch(keySet), next: key }, { requiredKeys: ['items'] }), m.encodeScanPage, m.decodeScanPage),
  codec('acks', batch(fc.record({ id: fc.maxSafeNat(), seq: fc.maxSafeNat() })), m.encodeAcks, m.decodeAcks),
  codec(
    'tombstone request',
    fc.record({ partition: fc.nat({ max: LIMITS.maxPartitions - 1 }), beforeMs: fc.maxSafeNat(), limit: fc.integer({ min: 1, max: 10_000 }) }),
    m.encodeTombstoneRequest,
    m.decodeTombstoneRequest,
  ),
]

function onlyInvalidInput(decode: () => unknown): void {
  try {
    decode()
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidInputError)
    expect((e as InvalidInputError).code).toBe('KV_INVALID_INPUT')
  }
}

describe.each(CODECS)('$name', (c) => {
  it('round-trips', () => {
    fc.assert(
      fc.property(c.frames, ({ value: v, frame }) => {
        expect(c.decode(frame)).toEqual(v)
      }),
      { numRuns: 100 },
    )
  })

  it('rejects every truncation and trailing bytes', () => {
    fc.assert(
      fc.property(c.frames, ({ frame }) => {
        for (let n = 0; n < frame.length; n += Math.ceil(frame.length / 64)) expect(() => c.decode(frame.subarray(0, n))).toThrow(InvalidInputError)
        expect(() => c.decode(Uint8Array.from([...frame, 0]))).toThrow(/trailing bytes/)
      }),
      { numRuns: 30 },
    )
  })

  it('throws nothing but InvalidInputError on random or mutated frames', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => onlyInvalidInput(() => c.decode(bytes))),
      { numRuns: 200 },
    )
    fc.assert(
      fc.property(c.frames, mutations, ({ frame }, ms) => onlyInvalidInput(() => c.decode(mutate(frame, ms)))),
      { numRuns: 200 },
    )
  })
})

const frame = (body: (w: Writer) => void): Uint8Array => {
  const w = new Writer()
  body(w)
  return w.finish()
}
const bad = (decode: () => unknown, message: RegExp): void => {
  expect(decode).toThrow(InvalidInputError)
  expect(decode).toThrow(message)
}

describe('limits', () => {
  it('keys must be 1..1024 bytes', () => {
    expect(m.decodeKeys(m.encodeKeys([new Uint8Array(1024)]))).toHaveLength(1)
    bad(() => m.decodeKeys(m.encodeKeys([new Uint8Array(0)])), /got 0/)
    bad(() => m.decodeKeys(m.encodeKeys([new Uint8Array(1025)])), /key bytes: 1025 is over the limit of 1024/)
    bad(() => m.decodeScanRequest(m.encodeScanRequest({ partition: 0, limit: 1, after: new Uint8Array(1025) })), /over the limit/)
  })

  it('batches hold at most 1024 items', () => {
    const keys = Array.from({ length: 1025 }, () => Uint8Array.of(1))
    bad(() => m.decodeKeys(m.encodeKeys(keys)), /batch items: 1025/)
    expect(m.decodeKeys(m.encodeKeys(keys.slice(1)))).toHaveLength(1024)
  })

  it('a store batch holds at most 1024 items over its three sections', () => {
    const k = Uint8Array.of(1)
    const item: CoordinateItem = { key: k, value: null, context: {}, timestamp: 0 }
    const sized = (keys: number, coordinates: number, merges: number) => ({
      keys: Array.from({ length: keys }, () => k),
      coordinates: Array.from({ length: coordinates }, () => item),
      merges: Array.from({ length: merges }, () => ({ key: k, siblings: [] })),
    })
    expect(m.decodeStoreBatch(m.encodeStoreBatch(sized(512, 256, 256))).merges).toHaveLength(256)
    bad(() => m.decodeStoreBatch(m.encodeStoreBatch(sized(512, 256, 257))), /batch items: 257/)
    bad(() => m.decodeStoreBatch(m.encodeStoreBatch(sized(1, 1024, 0))), /batch items: 1024/)
    // Each section keeps its own checks: a value over the protocol's ceiling is refused.
    bad(
      () =>
        m.decodeStoreBatch(m.encodeStoreBatch({ keys: [], coordinates: [{ ...item, value: new Uint8Array(LIMITS.maxValueBytesCeiling + 1) }], merges: [] })),
      /value bytes/,
    )
  })

  it("values and sibling counts are held to the protocol ceilings (the store limits are the engine's to check)", () => {
    const item: CoordinateItem = { key: Uint8Array.of(1), value: new Uint8Array(LIMITS.maxValueBytesCeiling + 1), context: {}, timestamp: 0 }
    bad(() => m.decodeCoordinate(m.encodeCoordinate([item])), /value bytes/)
    expect(m.decodeCoordinate(m.encodeCoordinate([{ ...item, value: new Uint8Array(LIMITS.maxValueBytesCeiling) }]))).toHaveLength(1)
    const v = (n: number): Version => ({ dot: { actor: 'a1', counter: n }, context: {}, timestamp: 0, value: null })
    const many = (n: number) => Array.from({ length: n }, (_, i) => v(i + 1))
    bad(() => m.decodeKeySets(m.encodeKeySets([{ key: Uint8Array.of(1), siblings: many(LIMITS.maxSiblingsCeiling + 1) }])), /siblings: 1001/)
    expect(m.decodeKeySets(m.encodeKeySets([{ key: Uint8Array.of(1), siblings: many(LIMITS.maxSiblingsCeiling) }]))).toHaveLength(1)
  })

  it('a stored read is sent as its stored bytes and decodes to its set only when read', () => {
    const set: Version[] = [{ dot: { actor: 'a1', counter: 1 }, context: { b2: 3 }, timestamp: 5, value: Uint8Array.of(7) }]
    const stored = m.storedRead(encodeSet(set))
    expect(m.encodeSetResults([stored])).toEqual(m.encodeSetResults([{ ok: true, value: set }]))
    expect(stored.ok).toBe(true)
    expect(stored.ok && stored.value).toEqual(set)
    // Bytes that are not a set show that the answer sends them without decoding them.
    const opaque = m.storedRead(Uint8Array.of(0xde, 0xad))
    expect(m.encodeSetResults([opaque])).toEqual(Uint8Array.of(1, 0, 0xde, 0xad))
  })

  it('scan limit, item status and value flag are checked', () => {
    for (const limit of [0, 10_001]) {
      bad(() => m.decodeScanRequest(m.encodeScanRequest({ partition: 0, limit })), /scan limit/)
      bad(() => m.decodeTombstoneRequest(m.encodeTombstoneRequest({ partition: 0, beforeMs: 0, limit })), /limit must be/)
    }
    bad(() => m.decodeAckResults(frame((w) => w.uint(1).byte(2))), /item status/)
    bad(() => m.decodeCoordinate(frame((w) => w.uint(1).bytes(Uint8Array.of(1)).uint(0).uint(0).byte(4))), /value flag/)
  })

  it('an item error keeps its code, message and cluster version', () => {
    const results: ItemResult<null>[] = [
      { ok: true, value: null },
      { ok: false, error: { code: 'KV_STALE_METADATA', message: 'moved', clusterVersion: 7 } },
    ]
    expect(m.decodeAckResults(m.encodeAckResults(results))).toEqual(results)
  })

  it('an item error with a code this version does not know decodes as KV_UNKNOWN_CODE, naming the code it was sent', () => {
    const sent = frame((w) => w.uint(1).byte(1).string('KV_FROM_A_NEWER_NODE').string('later').uint(0))
    expect(m.decodeAckResults(sent)).toEqual([{ ok: false, error: { code: 'KV_UNKNOWN_CODE', message: 'KV_FROM_A_NEWER_NODE: later' } }])
  })
})

describe('scan frames: flags and segments are strict', () => {
  it('refuses a flag byte other than 0 or 1 and a segment past the last leaf', async () => {
    const { encodeScanRequest, decodeScanRequest, encodeScanPage, decodeScanPage } = await import('./messages.js')
    const req = encodeScanRequest({ partition: 1, limit: 10, segments: [3], headsOnly: true })
    const badFlag = new Uint8Array(req)
    // The headsOnly flag, before the one-byte version (0: none).
    badFlag[badFlag.length - 2] = 2
    expect(() => decodeScanRequest(badFlag)).toThrow(/headsOnly flag must be 0 or 1/)
    expect(() => decodeScanRequest(encodeScanRequest({ partition: 1, limit: 10, segments: [1024] }))).toThrow(/segment 1024 is out of range/)
    const page = encodeScanPage({ items: [] })
    const badNext = new Uint8Array(page)
    badNext[badNext.length - 1] = 7
    expect(() => decodeScanPage(badNext)).toThrow(/next flag must be 0 or 1/)
  })
})
