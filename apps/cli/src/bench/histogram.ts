/**
 * A latency histogram with log-spaced buckets (5% wide) from 10 µs to 100 s,
 * for the benchmark: it merges slices and keeps the sum (for means), which
 * perf_hooks histograms do not.
 */
export class Histogram {
  private static readonly base = 1.05
  private static readonly minMs = 0.01
  private readonly buckets = new Map<number, number>()
  count = 0
  maxMs = 0
  sumMs = 0

  record(ms: number): void {
    const i = ms <= Histogram.minMs ? 0 : Math.ceil(Math.log(ms / Histogram.minMs) / Math.log(Histogram.base))
    this.buckets.set(i, (this.buckets.get(i) ?? 0) + 1)
    this.count++
    this.sumMs += ms
    if (ms > this.maxMs) this.maxMs = ms
  }

  /** The latency at quantile q (0..1), to within 5%. */
  quantile(q: number): number {
    if (this.count === 0) return 0
    const rank = Math.ceil(q * this.count)
    let seen = 0
    for (const i of [...this.buckets.keys()].sort((a, b) => a - b)) {
      seen += this.buckets.get(i) as number
      if (seen >= rank) return Math.min(this.maxMs, Histogram.minMs * Histogram.base ** i)
    }
    return this.maxMs
  }

  merge(other: Histogram): void {
    for (const [i, n] of other.buckets) this.buckets.set(i, (this.buckets.get(i) ?? 0) + n)
    this.count += other.count
    this.sumMs += other.sumMs
    this.maxMs = Math.max(this.maxMs, other.maxMs)
  }
}
