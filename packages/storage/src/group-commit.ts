import type Database from 'better-sqlite3'
import { OverloadedError, assert } from '@kvorum/core'

/** Write requests waiting for a group commit before new ones are refused, by default. */
export const DEFAULT_MAX_QUEUED_REQUESTS = 10_000

interface Job {
  readonly run: () => unknown
  readonly resolve: (value: unknown) => void
  readonly reject: (error: unknown) => void
}

/**
 * Group commit: writes that arrive in the same tick run in one SQLite
 * transaction, so a `full`-durability node pays one fsync per group, not per
 * write. A job that throws fails alone: see flush().
 */
export class GroupCommit {
  private queue: Job[] = []
  private scheduled = false
  /** Writes committed in the last group, for metrics. */
  lastGroupSize = 0
  groups = 0

  constructor(
    db: Database.Database,
    /** `failed` turns what a job or the commit threw into what its caller sees (SQLite's "disk is full" into KV_DISK_FULL). */
    private readonly hooks: { beforeCommit: () => void; commit: () => void; rollback: () => void; failed?: (error: unknown) => unknown },
    /** Most jobs (write requests) waiting at once before new ones are refused. */
    private readonly maxQueued = DEFAULT_MAX_QUEUED_REQUESTS,
    /** Runs the next group once this turn's I/O callbacks are done (setImmediate, or the simulator's). */
    private readonly schedule: (fn: () => void) => void = setImmediate,
  ) {
    assert(maxQueued >= 1, 'the group commit queue holds at least one request')
    this.transaction = db.transaction((jobs: readonly Job[]) => {
      const out = jobs.map((job) => job.run())
      this.hooks.beforeCommit()
      return out
    })
  }

  /** One transaction function for every group (building one per group showed in profiles). */
  private readonly transaction: (jobs: readonly Job[]) => unknown[]

  get depth(): number {
    return this.queue.length
  }

  /** Run `fn` inside the next group's transaction; resolves after the commit. */
  submit<T>(fn: () => T): Promise<T> {
    if (this.queue.length >= this.maxQueued) return Promise.reject(new OverloadedError(this.maxQueued))
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run: fn, resolve: resolve as (v: unknown) => void, reject })
      if (!this.scheduled) {
        this.scheduled = true
        this.schedule(() => this.flush())
      }
    })
  }

  /** Drop everything queued, unrun and unanswered (a crash); returns how many jobs went. */
  abandon(): number {
    const dropped = this.queue.length
    this.queue = []
    return dropped
  }

  /** Commit everything queued now. */
  flush(): void {
    this.scheduled = false
    const jobs = this.queue
    this.queue = []
    if (jobs.length === 0) return
    // Jobs report per-item failures as results, so a whole group normally
    // commits in one transaction. If a job throws anyway, the group rolls back
    // and each job reruns in its own transaction, so only the culprit fails.
    let outcomes: unknown[]
    try {
      outcomes = this.runGroup(jobs)
    } catch {
      for (const job of jobs) {
        try {
          job.resolve(this.runGroup([job])[0])
        } catch (error) {
          job.reject(this.hooks.failed ? this.hooks.failed(error) : error)
        }
      }
      return
    }
    this.groups++
    this.lastGroupSize = jobs.length
    for (const [i, job] of jobs.entries()) job.resolve(outcomes[i])
  }

  private runGroup(jobs: readonly Job[]): unknown[] {
    try {
      const outcomes = this.transaction(jobs)
      this.hooks.commit()
      return outcomes
    } catch (error) {
      this.hooks.rollback()
      throw error
    }
  }
}
