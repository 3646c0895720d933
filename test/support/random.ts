/**
 * The one seeded random generator of every test harness (simulation, fault suite, fuzzer): sfc32 seeded through
 * splitmix32, with 12 warm-up draws, so that a seed names one exact sequence of choices and a failure replays.
 *
 * Integers have one meaning everywhere: `int(n)` is in [0, n) and `range(lo, hi)` in [lo, hi], both derived
 * from `float()` by flooring, so `range(lo, hi) === lo + int(hi - lo + 1)` draw for draw.
 */
export class Random {
  /** A uniform 32-bit unsigned integer: the raw stream every other draw is made from. */
  readonly u32: () => number

  constructor(readonly seed: number) {
    this.u32 = sfc32(seed)
  }

  /** A float in [0, 1). */
  float(): number {
    return this.u32() / 0x1_0000_0000
  }

  /** An integer in [0, n); `n` must be a positive integer. */
  int(n: number): number {
    if (!(Number.isInteger(n) && n >= 1)) throw new Error(`assertion failed: random.int(${n})`)
    return Math.floor(this.float() * n)
  }

  /** An integer in [lo, hi], both included. */
  range(lo: number, hi: number): number {
    if (!(hi >= lo)) throw new Error(`assertion failed: random.range(${lo}, ${hi})`)
    return lo + this.int(hi - lo + 1)
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.float() < p
  }

  /** One item of a non-empty list, each equally likely. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('assertion failed: random.pick of an empty list')
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

  /** `n` random bytes, each `int(256)` (one draw per byte). */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) out[i] = this.int(256)
    return out
  }

  /** A length in [0, max] skewed to small values: most draws are short, a few reach `max`. */
  size(max: number): number {
    const r = this.float()
    return Math.min(max, Math.floor(r * r * r * (max + 1)))
  }

  /** An independent stream, so adding draws to one part of a run does not shift another's. */
  fork(): Random {
    return new Random(this.u32())
  }
}

/** sfc32 (Chris Doty-Humphrey's small fast counting generator) seeded through splitmix32. */
function sfc32(seed: number): () => number {
  let s = seed >>> 0
  const split = () => {
    s = (s + 0x9e3779b9) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
    return (z ^ (z >>> 16)) >>> 0
  }
  let a = split()
  let b = split()
  let c = split()
  let d = split()
  const next = () => {
    const t = (((a + b) >>> 0) + d) >>> 0
    d = (d + 1) >>> 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) >>> 0
    c = ((c << 21) | (c >>> 11)) >>> 0
    c = (c + t) >>> 0
    return t
  }
  for (let i = 0; i < 12; i++) next()
  return next
}
