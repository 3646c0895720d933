import type Database from 'better-sqlite3'
import { KvorumError } from '@kvorum/core'

interface Job {
  readonly run: () => unknown
  readonly resolve: (value: unknown) => void
  readonly reject: (error: unknown) => void
}

/** The write queue is full; the caller should back off and retry. */
export class OverloadedError extends KvorumError {
  constructor(limit: number) {
    super('KV_OVERLOADED', `node write queue is full (${limit} requests); retry after a short pause`)
  }
}

/**
 * Group commit: writes that arrive in the same tick run in one SQLite
 * transaction, so a `full`-durability node pays one fsync per group, not per
 * write. Each job runs in its own savepoint: a job that throws rolls back
 * alone and the rest of the group still commits.
 */
export class GroupCommit {
  private queue: Job[] = []
  private scheduled = false
  /** Writes committed in the last group, for metrics. */
  lastGroupSize = 0
  groups = 0

  constructor(
    private readonly db: Database.Database,
    private readonly hooks: {
      beforeCommit: () => void
      commit: () => void
      rollback: () => void
      mark: () => number
      undoTo: (mark: number) => void
    },
    /** Most writes waiting at once before new ones are refused. Default 10,000. */
    private readonly maxQueued = 10_000,
  ) {}

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
        setImmediate(() => this.flush())
      }
    })
  }

  /** Commit everything queued now. */
  flush(): void {
    this.scheduled = false
    const jobs = this.queue
    this.queue = []
    if (jobs.length === 0) return
    const outcomes: { ok: boolean; value: unknown }[] = []
    const each = this.db.transaction((job: Job) => job.run())
    const group = this.db.transaction(() => {
      for (const job of jobs) {
        const mark = this.hooks.mark()
        try {
          outcomes.push({ ok: true, value: each(job) })
        } catch (error) {
          this.hooks.undoTo(mark)
          outcomes.push({ ok: false, value: error })
        }
      }
      this.hooks.beforeCommit()
    })
    try {
      group()
      this.hooks.commit()
    } catch (error) {
      this.hooks.rollback()
      for (const job of jobs) job.reject(error)
      return
    }
    this.groups++
    this.lastGroupSize = jobs.length
    jobs.forEach((job, i) => {
      const out = outcomes[i] as { ok: boolean; value: unknown }
      if (out.ok) job.resolve(out.value)
      else job.reject(out.value)
    })
  }
}
