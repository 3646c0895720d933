/** A measured rate and its latency. */
export interface Rate {
  readonly opsPerSec: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** CPU (client and servers, all cores) per operation, µs; null without /proc. */
  readonly cpuUsPerOp: number | null
}
