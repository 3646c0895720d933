import { assert } from '@kvorum/core'

/** Latency samples kept per node: the most recent ones, so memory stays fixed however busy the node is. */
export const LATENCY_WINDOW_SAMPLES = 1024
/** Samples older than this do not count, ms: a node's p99 reflects the last minute, not its whole life. */
export const LATENCY_WINDOW_MS = 60_000

/** Percentiles over a window; zero when it holds no sample. */
export interface LatencySummary {
  readonly p50Ms: number
  readonly p99Ms: number
  /** Samples the percentiles were taken over. */
  readonly samples: number
}

/**
 * The last `capacity` request latencies of one node, each with when it was
 * taken, in a ring: recording is O(1) and allocates nothing, and a summary
 * sorts at most `capacity` numbers (it is asked for by stats() and scrapes,
 * not per request).
 */
export class LatencyWindow {
  private readonly ms: Float64Array
  private readonly at: Float64Array
  private next = 0
  private filled = 0

  constructor(
    private readonly capacity = LATENCY_WINDOW_SAMPLES,
    private readonly windowMs = LATENCY_WINDOW_MS,
  ) {
    assert(capacity >= 1 && windowMs > 0, 'a latency window holds at least one sample over a positive time')
    this.ms = new Float64Array(capacity)
    this.at = new Float64Array(capacity)
  }

  /** A request took `ms`, finishing at monotonic time `now`. */
  record(ms: number, now: number): void {
    this.ms[this.next] = ms
    this.at[this.next] = now
    this.next = (this.next + 1) % this.capacity
    this.filled = Math.min(this.filled + 1, this.capacity)
  }

  /** p50 and p99 (nearest rank) of the samples taken within the window before `now`. */
  summary(now: number): LatencySummary {
    const recent: number[] = []
    for (let i = 0; i < this.filled; i++) if (now - (this.at[i] as number) <= this.windowMs) recent.push(this.ms[i] as number)
    if (recent.length === 0) return { p50Ms: 0, p99Ms: 0, samples: 0 }
    recent.sort((a, b) => a - b)
    const rank = (p: number) => recent[Math.min(recent.length - 1, Math.ceil((p / 100) * recent.length) - 1)] as number
    return { p50Ms: rank(50), p99Ms: rank(99), samples: recent.length }
  }
}
