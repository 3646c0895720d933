import type { SiblingSet, Version } from './versions.js'

/**
 * Expiry is decided from the version alone: a version written with a time to
 * live carries `expiresAt` (absolute wall-clock ms, set when it was written),
 * so every replica and every reader holding it agrees, up to the difference
 * between their clocks. An expired version stays in its sibling set as a
 * tombstone would: it still covers its causal predecessors, so one that
 * expires can never let an older value read again.
 */

/** True when `version` carries an expiry and `nowMs` (wall-clock ms) has reached it. */
export function isExpired(version: Version, nowMs: number): boolean {
  return version.expiresAt !== undefined && nowMs >= version.expiresAt
}

/** The versions of a set that have not expired at `nowMs`: what a reader sees (tombstones included). */
export function unexpired(set: SiblingSet, nowMs: number): Version[] {
  return set.filter((v) => !isExpired(v, nowMs))
}

/** True when every version is a tombstone or expired at `nowMs`: the key reads as absent and may be reaped. */
export function isGone(set: SiblingSet, nowMs: number): boolean {
  return set.every((v) => v.value === null || isExpired(v, nowMs))
}

/**
 * From when a set reads as absent, ms, or null while one version holds a value
 * that never expires: the latest expiry in it, and no earlier than `sinceMs`
 * (when the set's tombstones were first held). The reaper's grace counts from it.
 */
export function goneFromMs(set: SiblingSet, sinceMs: number): number | null {
  let from = sinceMs
  for (const v of set) {
    if (v.expiresAt !== undefined) from = Math.max(from, v.expiresAt)
    else if (v.value !== null) return null
  }
  return from
}
