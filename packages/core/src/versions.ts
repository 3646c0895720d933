import type { ConflictMode } from './cluster.js'
import { type Dot, type VersionVector, compareDots, covers, join, withDot } from './clock.js'

/**
 * One stored version of a key (a sibling): the dot a primary gave it, the
 * causal context the writer had seen, a wall-clock timestamp (ms) and a value
 * or, for a delete, `null` (a tombstone). A version written with a time to
 * live carries `expiresAt`, the absolute wall-clock ms after which it reads as
 * absent; without it the version never expires.
 */
export interface Version {
  readonly dot: Dot
  readonly context: VersionVector
  readonly timestamp: number
  readonly value: Uint8Array | null
  readonly expiresAt?: number
}

/** The versions of one key, in canonical (dot) order, none covering another. */
export type SiblingSet = readonly Version[]

/** What a coordinating primary needs to turn a write into a version. */
export interface CoordinateInput {
  readonly value: Uint8Array | null
  readonly context: VersionVector
  readonly timestamp: number
  readonly expiresAt?: number | undefined
}

/** The version a write makes, with its expiry only when it has one. */
function newVersion(input: CoordinateInput, dot: Dot, timestamp: number): Version {
  const v: Version = { dot, context: input.context, timestamp, value: input.value }
  return input.expiresAt === undefined ? v : { ...v, expiresAt: input.expiresAt }
}

function sortSet(set: Version[]): Version[] {
  return set.sort((a, b) => compareDots(a.dot, b.dot))
}

/** The clock of a version: its context plus its own dot. */
export function versionClock(v: Version): VersionVector {
  return withDot(v.context, v.dot)
}

/** Join of the clocks of every sibling: the context a reader hands back to write. */
export function setContext(set: SiblingSet): VersionVector {
  return join(...set.map(versionClock))
}

/**
 * Merge sibling sets: the union (by dot), minus every version whose dot the
 * context of another version covers. Idempotent, commutative, associative.
 */
export function mergeSets(...sets: readonly SiblingSet[]): Version[] {
  const byDot = new Map<string, Version>()
  for (const set of sets) for (const v of set) byDot.set(`${v.dot.actor}:${v.dot.counter}`, v)
  const all = [...byDot.values()]
  const live = all.filter((v) => !all.some((u) => u !== v && covers(u.context, v.dot)))
  return sortSet(live)
}

/**
 * The coordinator's step of a put: the new version gets `dot`; stored versions
 * the writer's context covers are dropped; concurrent ones stay as siblings.
 */
export function supersede(stored: SiblingSet, input: CoordinateInput, dot: Dot): Version[] {
  const next = newVersion(input, dot, input.timestamp)
  return mergeSets(
    stored.filter((v) => !covers(input.context, v.dot)),
    [next],
  )
}

/**
 * Merge sets under a store's mode. `lww` keeps the single greatest
 * (timestamp, dot) of the union, ignoring causality, which keeps the merge
 * associative; the coordinator makes a causal successor's timestamp larger.
 */
export function resolveSets(mode: ConflictMode, ...sets: readonly SiblingSet[]): Version[] {
  return mode === 'lww' ? lwwReduce(sets.flat()) : mergeSets(...sets)
}

/**
 * The coordinator's step under a store's mode. In `lww` the new version's
 * timestamp is raised above every version the writer saw, so a causal
 * successor wins even when the writer's clock lags.
 */
export function coordinatedSet(mode: ConflictMode, stored: SiblingSet, input: CoordinateInput, dot: Dot): Version[] {
  if (mode === 'siblings') return supersede(stored, input, dot)
  let timestamp = input.timestamp
  // Saturate at the largest timestamp a frame can carry: a successor of a version stamped
  // 2^53-1 could not be encoded, and every later write to the key would fail. At the top,
  // the dot breaks the tie, as in any lww tie.
  for (const v of stored) if (covers(input.context, v.dot)) timestamp = Math.max(timestamp, Math.min(v.timestamp + 1, Number.MAX_SAFE_INTEGER))
  return lwwReduce([...stored, newVersion(input, dot, timestamp)])
}

/** Last-writer-wins: keep only the version with the greatest (timestamp, dot). Lossy under concurrency. */
export function lwwReduce(set: SiblingSet): Version[] {
  let best: Version | undefined
  for (const v of set) {
    if (!best || v.timestamp > best.timestamp || (v.timestamp === best.timestamp && compareDots(v.dot, best.dot) > 0)) best = v
  }
  return best ? [best] : []
}

/** True when every version is a tombstone (the key reads as not found). */
export function isDeleted(set: SiblingSet): boolean {
  return set.every((v) => v.value === null)
}

/** True when both sets hold exactly the same dots. */
export function sameSet(a: SiblingSet, b: SiblingSet): boolean {
  if (a.length !== b.length) return false
  const dots = new Set(a.map((v) => `${v.dot.actor}:${v.dot.counter}`))
  return b.every((v) => dots.has(`${v.dot.actor}:${v.dot.counter}`))
}
