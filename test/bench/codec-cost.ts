/**
 * The wire codec alone: encode and decode of the sibling sets a workload-A node
 * handles (1, 3 and 10 siblings of 512 bytes, clocks of three actors), in ns per set.
 *
 *   npx tsx --conditions=kvorum-source test/bench/codec-cost.ts
 */
import { type SiblingSet, decodeSet, encodeSet } from '@kvorum/core'

const actors = ['a1b2c3d4e5f6', '0f1e2d3c4b5a', '9a8b7c6d5e4f']
function set(siblings: number): SiblingSet {
  return Array.from({ length: siblings }, (_, i) => ({
    dot: { actor: actors[i % 3] as string, counter: 1000 + i },
    context: Object.fromEntries(actors.map((a, j) => [a, 990 + i + j])),
    timestamp: 1_764_000_000_000 + i,
    value: new Uint8Array(512).fill(i),
  }))
}

for (const n of [1, 3, 10]) {
  const s = set(n)
  const bytes = encodeSet(s)
  for (let i = 0; i < 20_000; i++) decodeSet(encodeSet(s))
  const rounds = 100_000 / n
  let t = performance.now()
  for (let i = 0; i < rounds; i++) encodeSet(s)
  const enc = ((performance.now() - t) * 1e6) / rounds
  t = performance.now()
  for (let i = 0; i < rounds; i++) decodeSet(bytes)
  const dec = ((performance.now() - t) * 1e6) / rounds
  console.log(JSON.stringify({ siblings: n, bytes: bytes.length, encodeNs: Math.round(enc), decodeNs: Math.round(dec) }))
}
