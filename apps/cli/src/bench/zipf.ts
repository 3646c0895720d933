/**
 * YCSB's scrambled zipfian key choice: a zipfian rank (theta 0.99, Gray et
 * al.'s method, as YCSB's ZipfianGenerator) hashed with FNV-1a so the popular
 * keys are spread over the key space instead of clustered at its start.
 */
export class ScrambledZipfian {
  private readonly zetan: number
  private readonly alpha: number
  private readonly eta: number
  private readonly zeta2: number

  constructor(
    private readonly items: number,
    private readonly theta = 0.99,
    private readonly random: () => number = Math.random,
  ) {
    if (!Number.isInteger(items) || items < 1) throw new Error(`assertion failed: zipfian needs at least one item, got ${items}`)
    let zetan = 0
    for (let i = 1; i <= items; i++) zetan += 1 / i ** theta
    this.zetan = zetan
    this.zeta2 = 1 + 1 / 2 ** theta
    this.alpha = 1 / (1 - theta)
    this.eta = (1 - (2 / items) ** (1 - theta)) / (1 - this.zeta2 / zetan)
  }

  /** The rank of the next item, 0 = most popular. */
  rank(): number {
    const u = this.random()
    const uz = u * this.zetan
    if (uz < 1) return 0
    if (uz < 1 + 0.5 ** this.theta) return 1
    return Math.floor(this.items * (this.eta * u - this.eta + 1) ** this.alpha) % this.items
  }

  /** The next key index in 0..items-1. */
  next(): number {
    return fnv1a(this.rank()) % this.items
  }
}

/** FNV-1a over the 4 bytes of a 32-bit integer. */
export function fnv1a(n: number): number {
  let h = 0x811c9dc5
  for (let i = 0; i < 4; i++) {
    h ^= (n >>> (i * 8)) & 0xff
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}
