import { type StoreDef, LIMITS, Writer, utf8 } from '@kvorum/core'
import { type Pool, batchSize, clock, key, siblings, timestamp, value } from './gen.js'
import { type LooseClock, type LooseItem, type LooseKeySet, type LooseVersion, looseClock, looseVersion, writeCoordinate, writeKeySets } from './loose.js'
import type { Random } from '../support/random.js'
import { PARTITIONS } from './target.js'

/**
 * Frames with one deliberate structural defect the node must refuse:
 * duplicated actors or dots, zero counters, bad UTF-8, sizes one past a limit.
 */

const BAD_UTF8: readonly Uint8Array[] = [
  Uint8Array.of(0xff),
  Uint8Array.of(0xc3, 0x28),
  Uint8Array.of(0xc0, 0x80), // overlong NUL
  Uint8Array.of(0xed, 0xa0, 0x80), // a UTF-16 surrogate
  Uint8Array.of(0xf4, 0x90, 0x80, 0x80), // past U+10FFFF
  Uint8Array.of(0x61, 0xe2, 0x82), // cut short
]

/** Valid UTF-8 outside the actor alphabet [0-9a-z-]{1,64}. */
const BAD_ACTORS: readonly string[] = ['', 'A', 'a_b', 'é', 'a'.repeat(65), ' a', 'a\u0000', '💥', '__proto__']

function badActor(prng: Random): Uint8Array {
  return prng.chance(0.5) ? prng.pick(BAD_UTF8) : utf8(prng.pick(BAD_ACTORS))
}

function overLimit(prng: Random, limit: number): number {
  return limit + 1 + prng.size(3)
}

/** A clock with one defect: a repeated actor, a zero counter, a bad actor, or too many entries. */
function badClock(pool: Pool): { clock: LooseClock; how: string } {
  const { prng } = pool
  const c = looseClock(clock(pool))
  const kind = prng.pick(['dup-actor', 'zero-counter', 'bad-actor', 'many-entries'] as const)
  if (kind === 'dup-actor') {
    const [actor] = c[0] ?? [utf8(prng.pick(pool.actors)), 1]
    c.push([actor, prng.range(1, 9)], [actor, prng.range(1, 9)])
  } else if (kind === 'zero-counter') {
    c.push([utf8('zz'), 0])
  } else if (kind === 'bad-actor') {
    c.push([badActor(prng), 1])
  } else {
    for (let i = c.length; i < overLimit(prng, LIMITS.maxClockEntries); i++) c.push([utf8(`x${i}`), 1])
  }
  return { clock: c, how: `clock:${kind}` }
}

/**
 * Change one thing a valid key and value carry: the key's size, the value flag (4 and up: bits 0 and 1,
 * the tombstone and the expiry, make valid frames). (A value over the
 * store's limit is no defect of the frame: the node refuses it as one item, which routes.ts checks.)
 */
function badKeyOrValue(prng: Random, it: { key: Uint8Array; flag: number; value: Uint8Array }): string {
  const kind = prng.pick(['empty-key', 'long-key', 'bad-flag'] as const)
  if (kind === 'empty-key') it.key = new Uint8Array(0)
  else if (kind === 'long-key') it.key = prng.bytes(overLimit(prng, LIMITS.maxKeyBytes))
  else it.flag = prng.range(4, 255)
  return kind
}

/** Values are bounded by the 16 MiB ceiling in a frame (a store's limit is checked per item), so no value is too big to send. */
function badVersion(pool: Pool, v: LooseVersion): string {
  const { prng } = pool
  const kind = prng.pick(['zero-counter', 'bad-actor', 'clock', 'bad-flag'] as const)
  if (kind === 'zero-counter') v.counter = 0
  else if (kind === 'bad-actor') v.actor = badActor(prng)
  else if (kind === 'clock') {
    const bad = badClock(pool)
    v.context = bad.clock
    return `version-${bad.how}`
  } else v.flag = prng.range(4, 255)
  return `version:${kind}`
}

function coordinateItems(pool: Pool, store: StoreDef): LooseItem[] {
  return Array.from({ length: batchSize(pool.prng) }, () => {
    const v = value(pool, store.maxValueBytes)
    return { key: key(pool), timestamp: timestamp(pool.prng), context: looseClock(clock(pool)), flag: v === null ? 1 : 0, value: v ?? new Uint8Array(0) }
  })
}

function keySets(pool: Pool, store: StoreDef, hints: boolean): LooseKeySet[] {
  return Array.from({ length: batchSize(pool.prng) }, () => {
    const set = siblings(pool, store.maxValueBytes).map(looseVersion)
    if (set.length === 0) set.push(looseVersion({ dot: { actor: 'a', counter: 1 }, context: {}, timestamp: 1, value: null }))
    return { ...(hints ? { store: utf8(store.name) } : {}), key: key(pool), siblings: set }
  })
}

function tooMany<T>(prng: Random, items: T[], limit: number): T[] {
  const first = items[0] as T
  while (items.length < overLimit(prng, limit)) items.push(first)
  return items
}

function defectiveCoordinate(pool: Pool, store: StoreDef): { bytes: Uint8Array; how: string } {
  const { prng } = pool
  const items = coordinateItems(pool, store)
  const it = prng.pick(items)
  const kind = prng.pick(['clock', 'key-or-value', 'many-items'] as const)
  if (kind === 'many-items') return { bytes: writeCoordinate(tooMany(prng, items, LIMITS.maxBatchItems)), how: 'many-items' }
  if (kind === 'clock') {
    const bad = badClock(pool)
    it.context = bad.clock
    return { bytes: writeCoordinate(items), how: bad.how }
  }
  const how = badKeyOrValue(prng, it)
  return { bytes: writeCoordinate(items), how }
}

function defectiveKeySets(pool: Pool, store: StoreDef, hints: boolean): { bytes: Uint8Array; how: string } {
  const { prng } = pool
  const items = keySets(pool, store, hints)
  const it = prng.pick(items)
  const first = it.siblings[0] as LooseVersion
  const kinds = ['dup-dot', 'version', 'key', 'many-siblings', 'many-items', ...(hints ? ['store'] : [])] as const
  const kind = prng.pick(kinds)
  if (kind === 'dup-dot') it.siblings.push({ ...first, timestamp: Math.max(0, first.timestamp - 1) })
  else if (kind === 'version') {
    const how = badVersion(pool, first)
    return { bytes: writeKeySets(items), how }
  } else if (kind === 'key') it.key = prng.chance(0.5) ? new Uint8Array(0) : prng.bytes(overLimit(prng, LIMITS.maxKeyBytes))
  else if (kind === 'many-siblings') {
    // Merge and reap take up to the ceiling of a store's maxSiblings in a frame; hints take the protocol's 100.
    const limit = hints ? LIMITS.maxSiblings : LIMITS.maxSiblingsCeiling
    for (let i = it.siblings.length; i < overLimit(prng, limit); i++) it.siblings.push({ ...first, actor: utf8('s'), counter: i + 1 })
  } else if (kind === 'many-items') return { bytes: writeKeySets(tooMany(prng, items, LIMITS.maxBatchItems)), how: kind }
  else it.store = prng.chance(0.5) ? prng.pick(BAD_UTF8) : prng.bytes(overLimit(prng, LIMITS.maxStoreNameLength)).map((b) => 0x61 + (b % 26))
  return { bytes: writeKeySets(items), how: kind }
}

function defectiveKeys(pool: Pool): { bytes: Uint8Array; how: string } {
  const { prng } = pool
  const keys = Array.from({ length: batchSize(prng) }, () => key(pool))
  const kind = prng.pick(['empty-key', 'long-key', 'many-items'] as const)
  if (kind === 'many-items') tooMany(prng, keys, LIMITS.maxBatchItems)
  else keys[prng.int(keys.length)] = kind === 'empty-key' ? new Uint8Array(0) : prng.bytes(overLimit(prng, LIMITS.maxKeyBytes))
  const w = new Writer().uint(keys.length)
  for (const k of keys) w.bytes(k)
  return { bytes: w.finish(), how: kind }
}

function defectiveScan(pool: Pool): { bytes: Uint8Array; how: string } {
  const { prng } = pool
  const kind = prng.pick(['limit', 'segments', 'after-key'] as const)
  const w = new Writer().uint(prng.int(PARTITIONS))
  w.uint(kind === 'limit' ? prng.pick([0, 10_001, 2 ** 32]) : prng.range(1, 100))
  const segs = kind === 'segments' ? overLimit(prng, 1 << LIMITS.segmentBits) : prng.size(4)
  w.uint(segs)
  for (let i = 0; i < segs; i++) w.uint(i)
  if (kind === 'after-key') w.byte(1).bytes(prng.chance(0.5) ? new Uint8Array(0) : prng.bytes(overLimit(prng, LIMITS.maxKeyBytes)))
  else w.byte(0)
  return { bytes: w.byte(0).finish(), how: `scan:${kind}` }
}

/** A frame for `route` with one structural defect, or null when the route has none to try. */
export function defective(pool: Pool, route: string, store: StoreDef): { bytes: Uint8Array; how: string } | null {
  switch (route) {
    case 'merge':
    case 'reap':
      return defectiveKeySets(pool, store, false)
    case 'hints':
      return defectiveKeySets(pool, store, true)
    case 'get':
      return defectiveKeys(pool)
    case 'batch': {
      // One defective section between two empty ones: the whole batch must be refused.
      const inner = pool.prng.pick(['coordinate', 'merge', 'get'] as const)
      const section = (
        inner === 'coordinate' ? defectiveCoordinate(pool, store) : inner === 'merge' ? defectiveKeySets(pool, store, false) : defectiveKeys(pool)
      ) as { bytes: Uint8Array; how: string }
      // The batch's routing version comes first.
      const w = new Writer().uint(pool.prng.int(4))
      if (inner !== 'get') w.uint(0)
      if (inner === 'merge') w.uint(0)
      w.raw(section.bytes)
      if (inner === 'get') w.uint(0).uint(0)
      if (inner === 'coordinate') w.uint(0)
      return { bytes: w.finish(), how: `batch:${section.how}` }
    }
    case 'scan':
      return defectiveScan(pool)
    case 'tombstones':
      return {
        bytes: new Writer()
          .uint(pool.prng.int(PARTITIONS))
          .uint(1)
          .uint(pool.prng.pick([0, 10_001]))
          .finish(),
        how: 'tombstones:limit',
      }
    case 'ack': {
      const w = new Writer().uint(overLimit(pool.prng, 10_000))
      return { bytes: w.finish(), how: 'ack:many' }
    }
    default:
      return null
  }
}
