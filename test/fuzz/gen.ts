import { type Dot, type StoreDef, type Version, type VersionVector, LIMITS, utf8 } from '@kvorum/core'
import type { Random } from '../support/random.js'

/** What the generators draw from: the node's own actor, the seeded keys, the stores. */
export interface Pool {
  readonly prng: Random
  readonly stores: readonly StoreDef[]
  readonly seededKeys: readonly Uint8Array[]
  /** Actors of contexts and dots; the node's incarnation among them, so contexts cover real versions. */
  readonly actors: readonly string[]
}

/** Largest safe integer: the edge of every varint field. */
const MAX_SAFE = Number.MAX_SAFE_INTEGER

/** Keys written by fuzzing, apart from the seeded ones. */
const FUZZ_KEYS = Array.from({ length: 32 }, (_, i) => utf8(`fuzz-${i}`))

export function key(pool: Pool): Uint8Array {
  const { prng } = pool
  return prng.weighted<() => Uint8Array>([
    [3, () => prng.pick(pool.seededKeys)],
    [5, () => prng.pick(FUZZ_KEYS)],
    [2, () => prng.bytes(prng.range(1, 32))],
    [0.2, () => prng.bytes(LIMITS.maxKeyBytes)],
  ])()
}

/** A counter: mostly small, sometimes at the edges of the varint range. */
export function counter(prng: Random): number {
  return prng.weighted<() => number>([
    [8, () => prng.range(1, 200)],
    [1, () => prng.range(1, 2 ** 31)],
    [0.3, () => MAX_SAFE - prng.int(3)],
  ])()
}

export function timestamp(prng: Random): number {
  return prng.weighted<() => number>([
    [8, () => 1_700_000_000_000 + prng.int(10_000_000)],
    [1, () => 0],
    [0.5, () => MAX_SAFE - prng.int(3)],
  ])()
}

export function clock(pool: Pool): VersionVector {
  const vv: Record<string, number> = {}
  const n = pool.prng.size(5)
  for (let i = 0; i < n; i++) vv[pool.prng.pick(pool.actors)] = counter(pool.prng)
  return vv
}

export function dot(pool: Pool): Dot {
  return { actor: pool.prng.pick(pool.actors), counter: counter(pool.prng) }
}

export function value(pool: Pool, maxBytes: number): Uint8Array | null {
  const { prng } = pool
  return prng.weighted<() => Uint8Array | null>([
    [6, () => prng.bytes(prng.size(64))],
    [2, () => null],
    [0.5, () => prng.bytes(maxBytes)],
    // Over the store's limit: the node must refuse the item alone (routes.ts checks the answer says so).
    [0.2, () => prng.bytes(maxBytes + 1 + prng.size(3))],
  ])()
}

/** A sibling set with distinct dots. */
export function siblings(pool: Pool, maxValueBytes: number): Version[] {
  const out: Version[] = []
  const seen = new Set<string>()
  const n = pool.prng.size(4)
  for (let i = 0; i < n; i++) {
    const d = dot(pool)
    const id = `${d.actor}:${d.counter}`
    if (seen.has(id)) continue
    seen.add(id)
    out.push({ dot: d, context: clock(pool), timestamp: timestamp(pool.prng), value: value(pool, maxValueBytes) })
  }
  return out
}

/** How many items a batch holds: mostly a few, sometimes the limit. */
export function batchSize(prng: Random): number {
  return prng.chance(0.02) ? LIMITS.maxBatchItems : prng.range(1, 1 + prng.size(12))
}
