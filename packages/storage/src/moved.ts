import type { ClusterDef } from '@kvorum/core'

/**
 * When each partition's replica sets last changed on this node (its own
 * clock), kept so that no tombstone is reaped in a partition that moved
 * within the grace period (MEMBERSHIP rule 2). Immutable: installing a
 * definition makes a new one, so a rolled-back install keeps the old.
 */
export class MovedAt {
  private constructor(private readonly at: ReadonlyMap<number, number>) {}

  static readonly none = new MovedAt(new Map())

  /** From the meta row written by {@link toJSON} (absent: nothing moved). */
  static parse(json: string | undefined): MovedAt {
    if (json === undefined) return MovedAt.none
    return new MovedAt(new Map(JSON.parse(json) as [number, number][]))
  }

  /**
   * After installing `next` over `held` at `now`: every partition whose
   * placement version rose is stamped, and stamps older than `keepMs`
   * (the longest tombstone grace of any store) are forgotten.
   */
  after(held: ClusterDef, next: ClusterDef, now: number, keepMs: number): MovedAt {
    const at = new Map([...this.at].filter(([, t]) => now - t < keepMs))
    const before = held.placement
    next.placement?.forEach((v, q) => {
      if (v > (before?.[q] ?? 0)) at.set(q, now)
    })
    return new MovedAt(at)
  }

  /** True when partition `q` moved less than `graceMs` before `now`. */
  movedWithin(q: number, now: number, graceMs: number): boolean {
    const t = this.at.get(q)
    return t !== undefined && now - t < graceMs
  }

  get size(): number {
    return this.at.size
  }

  toJSON(): string {
    return JSON.stringify([...this.at])
  }
}
