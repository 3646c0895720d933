import { KvorumError, type Time, type TimerHandle } from '@kvorum/core'
import { type ClientEvents, codeOf } from './emitter.js'

/** Background promises kept at once before new work is refused (late replies, repairs, hint parking). */
export const MAX_BACKGROUND = 100_000

/**
 * Work that outlives the caller's answer: late replies, read repairs, hints.
 * close() waits for it. A failure is never swallowed silently: it is counted
 * and told as a `backgroundError` event (listeners and channel, see emitter.ts).
 */
export class Background {
  private readonly pending = new Set<Promise<unknown>>()
  /** Failures so far, expected (KvorumError) or not. */
  failures = 0
  /** Failures that were not KvorumErrors: bugs. */
  unexpected = 0

  constructor(
    private readonly events: ClientEvents,
    private readonly time: Time,
  ) {}

  get size(): number {
    return this.pending.size
  }

  /** Keep `work` until it settles; report its failure under the name `task`. */
  run(task: string, work: Promise<unknown>): void {
    if (this.pending.size >= MAX_BACKGROUND) {
      // Dropping the reference does not stop the work; it only means close() will not wait for it.
      work.catch((e) => this.report(task, e))
      return
    }
    const p = work.catch((e) => this.report(task, e)).finally(() => this.pending.delete(p))
    this.pending.add(p)
  }

  private report(task: string, error: unknown): void {
    const expected = error instanceof KvorumError
    this.failures++
    if (!expected) this.unexpected++
    this.events.emit('backgroundError', () => ({ task, error, ...codeOf(error), expected }))
  }

  /** Wait for what is pending, at most `graceMs`. */
  async drain(graceMs: number): Promise<void> {
    let timer: TimerHandle | undefined
    await Promise.race([Promise.all([...this.pending]), new Promise<void>((r) => (timer = this.time.setTimeout(r, graceMs)))])
    this.time.clearTimeout(timer)
  }
}
