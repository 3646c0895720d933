import { sfc32 } from '../support/sfc32.js'

/**
 * A small seeded PRNG (sfc32, seeded through splitmix32), so that a seed
 * names one exact sequence of requests and a failure can be replayed.
 */
export class Prng {
  /** A uniform 32-bit unsigned integer. */
  readonly u32: () => number

  constructor(readonly seed: number) {
    this.u32 = sfc32(seed)
  }

  /** A float in [0, 1). */
  float(): number {
    return this.u32() / 0x1_0000_0000
  }

  /** An integer in [0, n). */
  int(n: number): number {
    if (!(n >= 1)) throw new Error(`assertion failed: prng.int(${n})`)
    return Math.floor(this.float() * n)
  }

  /** An integer in [lo, hi], inclusive. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1)
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.float() < p
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('assertion failed: prng.pick of an empty list')
    return items[this.int(items.length)] as T
  }

  /** One of `choices`, each drawn with the probability of its weight. */
  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    const total = choices.reduce((s, [w]) => s + w, 0)
    let x = this.float() * total
    for (const [w, item] of choices) {
      x -= w
      if (x < 0) return item
    }
    return (choices[choices.length - 1] as readonly [number, T])[1]
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff
    return out
  }

  /** A length skewed to small values: most draws are short, a few reach `max`. */
  size(max: number): number {
    const r = this.float()
    return Math.min(max, Math.floor(r * r * r * (max + 1)))
  }
}
