/**
 * A small seeded PRNG (sfc32, seeded through splitmix32), so that a seed
 * names one exact sequence of requests and a failure can be replayed.
 */
export class Prng {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor(readonly seed: number) {
    let s = seed >>> 0
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0
      let z = s
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
      return (z ^ (z >>> 16)) >>> 0
    }
    this.a = next()
    this.b = next()
    this.c = next()
    this.d = next()
    for (let i = 0; i < 12; i++) this.u32()
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0
    this.d = (this.d + 1) >>> 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) >>> 0
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0
    this.c = (this.c + t) >>> 0
    return t
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
