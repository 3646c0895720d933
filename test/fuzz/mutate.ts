import { Writer } from '@kvorum/core'
import type { Random } from '../support/random.js'

function varint(n: number): Uint8Array {
  return new Writer().uint(n).finish().slice()
}

/** Varints a length or count field is corrupted into: at and past every limit, and malformed ones. */
function hostileVarint(prng: Random): Uint8Array {
  return prng.weighted<() => Uint8Array>([
    [3, () => varint(prng.pick([0, 1, 63, 64, 65, 100, 101, 255, 256, 257, 1000, 1001, 1023, 1024, 1025, 4096, 4097, 10_000, 10_001, 16_384, 16_385]))],
    [2, () => varint(prng.pick([2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 64 * 1024 * 1024 + 1, 16 * 1024 * 1024 + 1]))],
    [2, () => varint(Number.MAX_SAFE_INTEGER - prng.int(2))],
    // Nine continuation bytes, and an 8-byte varint past 2^53: both too long to be a safe integer.
    [1, () => new Uint8Array(9).fill(0xff)],
    [1, () => Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)],
    // A varint that never ends before the frame does.
    [1, () => Uint8Array.of(0x80)],
  ])()
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** Byte length of the varint at the start of `bytes` (at most 9, or all of it). */
function varintLength(bytes: Uint8Array, at: number): number {
  let i = at
  while (i < bytes.length && i - at < 9 && ((bytes[i] as number) & 0x80) !== 0) i++
  return Math.min(bytes.length, i + 1) - at
}

type Mutation = (prng: Random, b: Uint8Array, other: Uint8Array) => Uint8Array

const MUTATIONS: readonly (readonly [number, string, Mutation])[] = [
  [
    4,
    'bit-flip',
    (prng, b) => {
      const out = b.slice()
      const flips = prng.range(1, 4)
      for (let i = 0; i < flips && out.length > 0; i++) {
        const at = prng.int(out.length)
        out[at] = (out[at] as number) ^ (1 << prng.int(8))
      }
      return out
    },
  ],
  [
    2,
    'set-byte',
    (prng, b) => {
      if (b.length === 0) return b
      const out = b.slice()
      out[prng.int(out.length)] = prng.pick([0x00, 0x01, 0x02, 0x7f, 0x80, 0xc0, 0xff, prng.int(256)])
      return out
    },
  ],
  [3, 'truncate', (prng, b) => b.slice(0, prng.int(b.length + 1))],
  [2, 'extend', (prng, b) => concat(b, prng.chance(0.5) ? prng.bytes(prng.range(1, 16)) : new Uint8Array(prng.range(1, 16)))],
  [
    2,
    'insert',
    (prng, b) => {
      const at = prng.int(b.length + 1)
      return concat(b.subarray(0, at), prng.bytes(prng.range(1, 8)), b.subarray(at))
    },
  ],
  [
    2,
    'delete',
    (prng, b) => {
      const at = prng.int(b.length + 1)
      return concat(b.subarray(0, at), b.subarray(Math.min(b.length, at + prng.range(1, 16))))
    },
  ],
  [
    2,
    'duplicate',
    (prng, b) => {
      const from = prng.int(b.length + 1)
      const to = Math.min(b.length, from + prng.range(1, 64))
      return concat(b.subarray(0, to), b.subarray(from, to), b.subarray(to))
    },
  ],
  [
    4,
    'length-field',
    (prng, b) => {
      const at = prng.int(b.length + 1)
      const len = at < b.length ? varintLength(b, at) : 0
      return concat(b.subarray(0, at), hostileVarint(prng), b.subarray(at + len))
    },
  ],
  [3, 'huge-count', (prng, b) => concat(hostileVarint(prng), b.subarray(varintLength(b, 0)))],
  [
    1,
    'splice-other',
    (prng, b, other) => {
      const at = prng.int(b.length + 1)
      const from = prng.int(other.length + 1)
      return concat(b.subarray(0, at), other.subarray(from))
    },
  ],
]

/** Apply one to three random byte-level mutations to a valid frame; returns the bytes and what was done. */
export function mutate(prng: Random, frame: Uint8Array, other: Uint8Array): { bytes: Uint8Array; how: string } {
  let bytes = frame
  const how: string[] = []
  const rounds = prng.weighted([
    [6, 1],
    [3, 2],
    [1, 3],
  ] as const)
  for (let i = 0; i < rounds; i++) {
    const [name, fn] = prng.weighted(MUTATIONS.map(([w, name, fn]) => [w, [name, fn] as const] as const))
    bytes = fn(prng, bytes, other)
    how.push(name)
  }
  return { bytes, how: how.join('+') }
}
