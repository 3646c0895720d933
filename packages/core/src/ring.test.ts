import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import murmur from 'murmurhash3js-revisited'
import { Ring, initialAssignment, keyHash, partitionOfHash, rebalanceAssignment, segmentOfHash } from './ring.js'
import { type NodeDef, storeDef } from './cluster.js'
import { utf8 } from './bytes.js'

const nodeDef = (i: number, zones = 0): NodeDef => ({
  id: `n${i}`,
  url: `http://127.0.0.1:${7000 + i}`,
  ...(zones > 0 ? { zone: `z${i % zones}` } : {}),
})
const nodes = (k: number, zones = 0): NodeDef[] => Array.from({ length: k }, (_, i) => nodeDef(i + 1, zones))
const Q_VALUES = [8, 16, 32, 64, 128, 256, 512, 1024]

function counts(assignment: readonly string[], ids: readonly string[]): number[] {
  return ids.map((id) => assignment.filter((o) => o === id).length)
}

function expectBalanced(assignment: readonly string[], ids: readonly string[]): void {
  const c = counts(assignment, ids)
  expect(Math.max(...c) - Math.min(...c)).toBeLessThanOrEqual(1)
  expect(assignment.every((o) => ids.includes(o))).toBe(true)
}

const moves = (before: readonly string[], after: readonly string[]): number[] => before.flatMap((o, p) => (after[p] === o ? [] : [p]))

describe('hashing', () => {
  it('keyHash of bytes is the unsigned murmur3 x86 32-bit hash', () => {
    expect(keyHash(new Uint8Array())).toBe(0)
    expect(keyHash(utf8('hello'))).toBe(0x248bfa47)
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (key) => {
        const h = keyHash(key)
        expect(Number.isInteger(h) && h >= 0 && h < 2 ** 32).toBe(true)
        expect(keyHash(Uint8Array.from(key))).toBe(h)
      }),
      { numRuns: 200 },
    )
  })

  // Why keyHash takes bytes only: the library silently returns undefined for a string.
  it('the murmur library does not hash strings, so keys must be turned into bytes first', () => {
    expect((murmur.x86.hash32 as (k: unknown) => unknown)('hello')).toBeUndefined()
  })

  it('partitionOfHash cuts the hash space into Q equal ranges, segmentOfHash into 1024 per partition', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 16 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }), (bits, h) => {
        const q = 2 ** bits
        const width = 2 ** 32 / q
        const p = partitionOfHash(h, q)
        const s = segmentOfHash(h, q)
        expect(p >= 0 && p < q && s >= 0 && s < 1024).toBe(true)
        expect(p * width <= h && h < (p + 1) * width).toBe(true)
        const base = p * width + (s * width) / 1024
        expect(base <= h && h < base + width / 1024).toBe(true)
      }),
      { numRuns: 300 },
    )
  })

  it('refuses a partition count that is not a power of two', () => {
    expect(() => partitionOfHash(1, 12)).toThrow(/power of two/)
    expect(() => initialAssignment(nodes(3), 100)).toThrow(/power of two/)
  })
})

describe('initialAssignment', () => {
  it('gives every node a partition count differing by at most one', () => {
    for (const q of Q_VALUES) {
      for (let k = 1; k <= 20; k++) {
        const ns = nodes(k, k % 3)
        const a = initialAssignment(ns, q)
        expect(a).toHaveLength(q)
        expectBalanced(
          a,
          ns.map((n) => n.id),
        )
      }
    }
  })
})

describe('rebalanceAssignment', () => {
  it('adding a node moves about Q/(k+1) partitions, all to the new node, and keeps the balance', () => {
    for (const q of Q_VALUES) {
      for (let k = 1; k < 20; k++) {
        const before = initialAssignment(nodes(k), q)
        const grown = nodes(k + 1)
        const after = rebalanceAssignment(before, grown)
        const moved = moves(before, after)
        expect(moved.length).toBeGreaterThanOrEqual(Math.floor(q / (k + 1)) - 1)
        expect(moved.length).toBeLessThanOrEqual(Math.ceil(q / (k + 1)) + 1)
        for (const p of moved) expect(after[p]).toBe(`n${k + 1}`)
        expectBalanced(
          after,
          grown.map((n) => n.id),
        )
      }
    }
  })

  it('over any sequence of joins and leaves, moves only what must move', () => {
    const step = fc.oneof(fc.constant({ join: true, index: 0 }), fc.record({ join: fc.constant(false), index: fc.nat() }))
    fc.assert(
      fc.property(
        fc.constantFrom(...Q_VALUES),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 3 }),
        fc.array(step, { maxLength: 12 }),
        (q, k0, zones, steps) => {
          let members = nodes(k0, zones)
          let next = k0 + 1
          let assignment = initialAssignment(members, q)
          for (const s of steps) {
            if (!s.join && members.length === 1) continue
            const leaving = s.join ? undefined : members[s.index % members.length]
            const grown = s.join ? [...members, nodeDef(next++, zones)] : members.filter((n) => n !== leaving)
            const after = rebalanceAssignment(assignment, grown)
            const moved = moves(assignment, after)
            const joined = grown.length > members.length ? (grown.at(-1) as NodeDef).id : undefined
            // A join moves partitions only onto the new node; a leave only off the leaving node.
            for (const p of moved) {
              if (joined) expect(after[p]).toBe(joined)
              else expect(assignment[p]).toBe(leaving?.id)
            }
            if (!joined) expect(moved.length).toBe(assignment.filter((o) => o === leaving?.id).length)
            expectBalanced(
              after,
              grown.map((n) => n.id),
            )
            members = grown
            assignment = after
          }
        },
      ),
      { numRuns: 150 },
    )
  })
})

function ring(ns: readonly NodeDef[], assignment: readonly string[]): Ring {
  return new Ring({ version: 1, partitions: assignment.length, nodes: ns, assignment, stores: [storeDef({ name: 's' })] })
}

/** The preference list of §3 without zones: owners of p, p+1, ..., skipping repeats. */
function walk(assignment: readonly string[], p: number): string[] {
  const out: string[] = []
  for (let i = 0; i < assignment.length; i++) {
    const owner = assignment[(p + i) % assignment.length] as string
    if (!out.includes(owner)) out.push(owner)
  }
  return out
}

// A random assignment in which every node owns at least one partition.
const layout = fc
  .record({ k: fc.integer({ min: 1, max: 9 }), zones: fc.integer({ min: 0, max: 3 }), bits: fc.integer({ min: 4, max: 7 }) })
  .chain(({ k, zones, bits }) => {
    const ns = nodes(k, zones)
    return fc.shuffledSubarray(initialAssignment(ns, 2 ** bits), { minLength: 2 ** bits }).map((assignment) => ({ ns, assignment }))
  })

describe('Ring', () => {
  it('without zones, primaries are the first n distinct owners walking the ring from p', () => {
    fc.assert(
      fc.property(layout, fc.nat(), fc.integer({ min: 1, max: 9 }), ({ ns, assignment }, pi, n) => {
        const plain = ns.map(({ id, url }) => ({ id, url }))
        const r = ring(plain, assignment)
        const p = pi % assignment.length
        expect(r.primaries(p, n)).toEqual(walk(assignment, p).slice(0, n))
        expect(r.order(p, n)).toEqual(walk(assignment, p))
      }),
      { numRuns: 200 },
    )
  })

  it('gives n distinct primaries, led by the owner, with the first min(n, zones) in distinct zones', () => {
    fc.assert(
      fc.property(layout, fc.nat(), fc.integer({ min: 1, max: 9 }), ({ ns, assignment }, pi, wanted) => {
        const r = ring(ns, assignment)
        const p = pi % assignment.length
        const n = Math.min(wanted, ns.length)
        const primaries = r.primaries(p, n)
        expect(new Set(primaries).size).toBe(n)
        expect(primaries[0]).toBe(assignment[p])
        // Fallbacks follow the primaries and repeat none of them.
        expect(new Set(r.order(p, n)).size).toBe(ns.length)
        const zoneOf = new Map(ns.map((x) => [x.id, x.zone ?? '']))
        const zoneCount = new Set(zoneOf.values()).size
        const lead = primaries.slice(0, Math.min(n, zoneCount)).map((id) => zoneOf.get(id))
        expect(new Set(lead).size).toBe(lead.length)
        for (const id of primaries) expect(r.holds(id, p, n)).toBe(true)
      }),
      { numRuns: 300 },
    )
  })

  it('spreads each key over 3 zones in a 6-node, 3-zone cluster', () => {
    const ns = nodes(6, 3)
    const r = ring(ns, initialAssignment(ns, 256))
    for (let p = 0; p < 256; p++) {
      const zones = r.primaries(p, 3).map((id) => ns.find((x) => x.id === id)?.zone)
      expect(new Set(zones).size).toBe(3)
    }
  })

  it('places a key by the hash of its bytes', () => {
    const ns = nodes(4)
    const r = ring(ns, initialAssignment(ns, 64))
    const key = utf8('user:42')
    expect(r.partitionOf(key)).toBe(partitionOfHash(keyHash(key), 64))
  })
})
