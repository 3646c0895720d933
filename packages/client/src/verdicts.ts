import { assert } from '@kvorum/core'
import type { QuorumTracker } from './quorum.js'

/**
 * The decisions of the read and write rounds, as plain functions of their
 * state, so that unit tests drive them without a cluster.
 */

/** Where a round stands: still waiting, answered, out of time, or unable to reach its quorum. */
export type Verdict = 'wait' | 'met' | 'timeout' | 'impossible'

/** The round's verdict from its tracker and whether its deadline has passed. */
export function quorumVerdict(tracker: QuorumTracker, expired: boolean): Verdict {
  if (tracker.met) return 'met'
  if (tracker.impossible) return 'impossible'
  return expired ? 'timeout' : 'wait'
}

/**
 * The verdict of a write that needs its quorum in several replica sets (old
 * and new during a move): met once every set is, impossible once any set is.
 */
export function combinedVerdict(trackers: readonly QuorumTracker[], expired: boolean): Verdict {
  if (trackers.every((t) => t.met)) return 'met'
  if (trackers.some((t) => t.impossible)) return 'impossible'
  return expired ? 'timeout' : 'wait'
}

/** What to do after a primary failed to coordinate a write. */
export type CoordinatorStep = 'fatal' | 'indeterminate' | 'next'

/**
 * After a primary failed to coordinate: a fatal error ends the put; a
 * failure after which the write may have applied there ends it as
 * indeterminate (another primary would store it a second time under another
 * dot, and a later write that saw only one copy would leave the other to come
 * back); anything else tries the next primary.
 */
export function afterCoordinatorFailure(fatal: boolean, mayHaveApplied: boolean): CoordinatorStep {
  if (fatal) return 'fatal'
  return mayHaveApplied ? 'indeterminate' : 'next'
}

/**
 * The fallback to hint for an unreachable replica: the first one not used
 * yet that the detector thinks is up, or null when none is left (then the
 * hint is parked on the coordinator).
 */
export function nextFallback(fallbacks: readonly string[], used: ReadonlySet<string>, isUp: (node: string) => boolean): string | null {
  return fallbacks.find((f) => !used.has(f) && isUp(f)) ?? null
}

/** Nodes the detector thinks are up first, then the others as a last resort, in preference order. */
export function upFirst(nodes: readonly string[], isUp: (node: string) => boolean): string[] {
  return [...nodes.filter((n) => isUp(n)), ...nodes.filter((n) => !isUp(n))]
}

/** How many replicas a read asks at once: r (at least pr), or all of them with readFromAll. */
export function firstAsks(candidates: number, r: number, pr: number, readFromAll: boolean): number {
  assert(r >= 1 && pr >= 0 && pr <= r, 'read quorum is 1 <= r, 0 <= pr <= r')
  return readFromAll ? candidates : Math.min(candidates, Math.max(r, pr))
}
