import { type Time, sleep } from '@kvorum/core'

/**
 * When background work backs off: a request is slow when it takes over
 * slowMs, or over slowFactor × the fastest seen and at least minSlowMs (a
 * merge of a few hundred keys takes a few ms on a healthy node).
 */
export const THROTTLE = { slowMs: 100, slowFactor: 4, minSlowMs: 20, baselineItems: 64, floorShare: 0.02, recoverShare: 0.05 } as const

/**
 * A token bucket: `take(n)` waits until n tokens are there. Keeps background
 * work (hint delivery, repair) from crowding out foreground traffic.
 */
export class RateLimiter {
  private tokens: number
  private last: number
  private perSecond: number
  /** The fastest request seen (the baseline for "slow"), ms. */
  private fastestMs = Number.POSITIVE_INFINITY

  /** `ceiling` tokens a second, bursting to one second's worth. Infinity disables the limit. */
  constructor(
    private readonly ceiling: number,
    private readonly time: Time,
  ) {
    this.perSecond = ceiling
    this.tokens = ceiling
    this.last = time.monotonicMs()
  }

  /** The rate now: the ceiling, or less after nodes slowed down. */
  get rate(): number {
    return this.perSecond
  }

  /**
   * Learn how long a request the limited work sent took. A slow one (a node
   * under load: its queue grows, and the foreground waits in it too) halves
   * the rate, down to a floor; a normal one
   * wins back a twentieth of the ceiling (additive increase, multiplicative
   * decrease, as TCP does).
   */
  observe(latencyMs: number, items: number): void {
    if (!Number.isFinite(this.ceiling)) return
    // Only full-sized requests set the baseline: a small last chunk is quick and proves nothing.
    if (items >= THROTTLE.baselineItems) this.fastestMs = Math.min(this.fastestMs, latencyMs)
    const floor = Math.max(1, this.ceiling * THROTTLE.floorShare)
    const slow = latencyMs > THROTTLE.slowMs || latencyMs > Math.max(THROTTLE.minSlowMs, this.fastestMs * THROTTLE.slowFactor)
    if (slow) this.perSecond = Math.max(floor, this.perSecond / 2)
    else this.perSecond = Math.min(this.ceiling, this.perSecond + this.ceiling * THROTTLE.recoverShare)
  }

  async take(n: number): Promise<void> {
    if (!Number.isFinite(this.perSecond)) return
    for (;;) {
      const now = this.time.monotonicMs()
      this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.last) / 1000) * this.perSecond)
      this.last = now
      // A request larger than the bucket waits for a full bucket and then goes.
      if (this.tokens >= Math.min(n, this.perSecond)) {
        this.tokens -= n
        return
      }
      const waitMs = ((Math.min(n, this.perSecond) - this.tokens) / this.perSecond) * 1000
      await sleep(this.time, Math.max(1, Math.ceil(waitMs)))
    }
  }
}
