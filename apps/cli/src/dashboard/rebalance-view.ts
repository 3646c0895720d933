import type { ClusterDef, MoveStage } from '@kvorum/core'

/** Where a membership change is, as far as the definitions the nodes hold tell. */
export interface RebalanceView {
  readonly planId: string
  readonly step: number
  readonly steps: number
  readonly stage: MoveStage
  /** Assignment entries the plan changes (an estimate when the dashboard started after the plan: see docs/dashboard.md). */
  readonly entriesTotal: number
  /** Of those, the entries already at their final owner. */
  readonly entriesDone: number
  /** Entries moved per second since the dashboard first saw the plan; 0 before two observations apart. */
  readonly entriesPerSecond: number
  /** Seconds until the last entry moves at that rate; null without a rate. */
  readonly etaSeconds: number | null
  /** Since the dashboard first saw the plan, s. */
  readonly watchedSeconds: number
}

/** Entries of `def`'s assignment not yet at the plan's final owner. */
function remainingEntries(def: ClusterDef): number {
  const target = def.move?.target ?? []
  let left = 0
  def.assignment.forEach((owner, q) => {
    if (target[q] !== undefined && target[q] !== owner) left++
  })
  return left
}

/**
 * Follows one plan across the definitions a poll sees: the rate is the
 * entries that reached their final owner since the plan was first seen,
 * over the time since, so a dashboard started mid-plan measures from then.
 */
export class RebalanceTracker {
  private plan: { id: string; firstMs: number; firstRemaining: number; mostRemaining: number } | null = null

  /** The progress shown for `def` at `nowMs`; null when no change is in progress. */
  observe(def: ClusterDef, nowMs: number): RebalanceView | null {
    const move = def.move
    if (!move) {
      this.plan = null
      return null
    }
    const remaining = remainingEntries(def)
    if (this.plan?.id !== move.planId) this.plan = { id: move.planId, firstMs: nowMs, firstRemaining: remaining, mostRemaining: remaining }
    const plan = this.plan
    plan.mostRemaining = Math.max(plan.mostRemaining, remaining)
    // Steps before this one each changed at most entriesPerStep entries: a floor for a plan seen late.
    const beforeSteps = Math.min(def.partitions, remaining + (move.step - 1) * move.entriesPerStep)
    const entriesTotal = Math.max(plan.mostRemaining, beforeSteps)
    const watchedMs = nowMs - plan.firstMs
    const moved = plan.firstRemaining - remaining
    const entriesPerSecond = watchedMs >= 1000 && moved > 0 ? (moved * 1000) / watchedMs : 0
    return {
      planId: move.planId,
      step: move.step,
      steps: move.steps,
      stage: move.stage,
      entriesTotal,
      entriesDone: entriesTotal - remaining,
      entriesPerSecond,
      etaSeconds: entriesPerSecond > 0 ? Math.round(remaining / entriesPerSecond) : null,
      watchedSeconds: Math.round(watchedMs / 1000),
    }
  }
}
