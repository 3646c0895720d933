import { type Time, sleep } from '@kvorum/core'

/**
 * A token bucket: `take(n)` waits until n tokens are there. Keeps background
 * work (hint delivery, repair) from crowding out foreground traffic.
 */
export class RateLimiter {
  private tokens: number
  private last: number

  /** `perSecond` tokens a second, bursting to one second's worth. Infinity disables the limit. */
  constructor(
    private readonly perSecond: number,
    private readonly time: Time,
  ) {
    this.tokens = perSecond
    this.last = time.now()
  }

  async take(n: number): Promise<void> {
    if (!Number.isFinite(this.perSecond)) return
    for (;;) {
      const now = this.time.now()
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
