import type { Time } from '@kvorum/core'
import type { VirtualClock } from './clock.js'
import type { Random } from '../support/random.js'
import type { Trace } from './trace.js'

/**
 * Skewed wall clocks, the clock nemesis of issue 14: every node and client
 * reads the virtual wall clock plus its own offset, minutes either way, and
 * some clocks jump backwards during the run (an NTP step). Monotonic time and
 * timers stay true, as a real process's do; only `now()`, which versions,
 * expiries and tombstone times are stamped with, is skewed.
 */

/** Largest steady offset of one clock from true time, ms (5 minutes). */
export const MAX_SKEW_MS = 5 * 60_000
/** Largest single backward jump, ms (3 minutes). */
export const MAX_JUMP_MS = 3 * 60_000
/** Most backward jumps in one seed. */
const MAX_JUMPS = 3

/** What a seed's clocks do: each actor's starting offset, and backward jumps at virtual times. */
export interface SkewPlan {
  readonly offsets: ReadonlyMap<string, number>
  readonly jumps: readonly { readonly atMs: number; readonly who: string; readonly byMs: number }[]
}

/**
 * Draw offsets for every actor (a third of the clocks true, the rest up to
 * MAX_SKEW_MS either way) and backward jumps of the `jumpers` within
 * `windowMs` (clients among them unless the run says otherwise). This
 * nemesis found that SDK deadlines ran on the wall clock, so a call across a
 * backward step waited up to the step longer; they run on monotonic time now.
 */
export function planSkew(rng: Random, actors: readonly string[], jumpers: readonly string[], windowMs: number): SkewPlan {
  const offsets = new Map<string, number>()
  for (const who of actors) offsets.set(who, rng.chance(1 / 3) ? 0 : rng.range(-MAX_SKEW_MS, MAX_SKEW_MS))
  const jumps = Array.from({ length: rng.range(0, MAX_JUMPS) }, () => ({
    atMs: rng.range(0, Math.max(1, Math.floor(windowMs))),
    who: rng.pick(jumpers),
    byMs: rng.range(1000, MAX_JUMP_MS),
  }))
  return { offsets, jumps }
}

/** The skewed clocks of one run. Actors not in the plan read true time. */
export class SkewedClocks {
  private readonly offsets: Map<string, number>

  constructor(
    private readonly clock: VirtualClock,
    plan: SkewPlan,
    private readonly trace: Trace,
  ) {
    this.offsets = new Map(plan.offsets)
    for (const j of plan.jumps) clock.setTimeout(() => this.jump(j.who, j.byMs), j.atMs)
  }

  /** Set one clock back by `byMs`. */
  private jump(who: string, byMs: number): void {
    this.offsets.set(who, (this.offsets.get(who) ?? 0) - byMs)
    this.trace.event(`clock of ${who} jumps back ${byMs} ms`)
  }

  /** The `time` option of one actor: the virtual clock with its skewed wall clock. */
  time(who: string): Time {
    return { ...this.clock.time, now: () => this.clock.dateNow() + (this.offsets.get(who) ?? 0) }
  }
}
