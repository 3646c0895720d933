import { hash } from 'node:crypto'
import type { SiblingSet } from './versions.js'
import { LIMITS } from './limits.js'

/** Bytes of one Merkle hash. */
export const HASH_BYTES = 8
/** Leaves (segments) per partition. */
export const SEGMENTS = 1 << LIMITS.segmentBits
/** Leaves under one branch of the middle level. */
export const BRANCH_FANOUT = 32
/** Branches per partition. */
export const BRANCHES = SEGMENTS / BRANCH_FANOUT

export const ZERO_HASH: Uint8Array = new Uint8Array(HASH_BYTES)

/**
 * The hash of one key's state: its bytes and the dots of its siblings. Two
 * replicas holding the same dots hold the same versions, so the values need
 * not be hashed. An empty set hashes to zero, as if the key were absent.
 */
export function keyDigest(key: Uint8Array, set: SiblingSet): Uint8Array {
  if (set.length === 0) return ZERO_HASH
  // One buffer, one call: the same bytes as hashing the key and then `|actor:counter` per sibling.
  let text = ''
  for (const v of set) text += `|${v.dot.actor}:${v.dot.counter}`
  const input = Buffer.allocUnsafe(key.length + Buffer.byteLength(text))
  input.set(key)
  input.write(text, key.length)
  return new Uint8Array(hash('sha256', input, 'buffer').subarray(0, HASH_BYTES))
}

/** a XOR b, as a new array. */
export function xorHash(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(HASH_BYTES)
  for (let i = 0; i < HASH_BYTES; i++) out[i] = (a[i] ?? 0) ^ (b[i] ?? 0)
  return out
}

/** XOR of a run of hashes packed one after another. */
export function xorAll(packed: Uint8Array): Uint8Array {
  const out = new Uint8Array(HASH_BYTES)
  for (let off = 0; off < packed.length; off += HASH_BYTES) for (let i = 0; i < HASH_BYTES; i++) out[i] = (out[i] as number) ^ (packed[off + i] as number)
  return out
}

/** Indices of the hashes that differ between two packed runs of equal length. */
export function diffHashes(a: Uint8Array, b: Uint8Array): number[] {
  const out: number[] = []
  const count = Math.max(a.length, b.length) / HASH_BYTES
  for (let j = 0; j < count; j++) {
    for (let i = 0; i < HASH_BYTES; i++) {
      if ((a[j * HASH_BYTES + i] ?? 0) !== (b[j * HASH_BYTES + i] ?? 0)) {
        out.push(j)
        break
      }
    }
  }
  return out
}

/** The branch level of a partition, computed from its packed leaves. */
export function branchesOf(leaves: Uint8Array): Uint8Array {
  const out = new Uint8Array(BRANCHES * HASH_BYTES)
  for (let b = 0; b < BRANCHES; b++) {
    const start = b * BRANCH_FANOUT * HASH_BYTES
    out.set(xorAll(leaves.subarray(start, start + BRANCH_FANOUT * HASH_BYTES)), b * HASH_BYTES)
  }
  return out
}
