import { sfc32 } from '../support/sfc32.js'

/**
 * A small seeded PRNG (sfc32, seeded through splitmix32): every random choice
 * of a simulation run comes from one of these, so a seed replays exactly.
 */
export class Random {
  private readonly u32: () => number

  constructor(seed: number) {
    this.u32 = sfc32(seed)
  }

  /** A float in [0, 1). */
  next(): number {
    return this.u32() / 4294967296
  }

  /** An integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1))
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('assertion failed: pick from an empty list')
    return items[Math.floor(this.next() * items.length)] as T
  }

  /** An independent stream, so adding draws to one part of the run does not shift another's. */
  fork(): Random {
    return new Random(this.int(0, 0xffffffff))
  }

  /** `n` random bytes (for engine incarnations). */
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n)
    for (let i = 0; i < n; i++) out[i] = this.int(0, 255)
    return out
  }
}
