import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { type Dot, type VersionVector, compareDots, covers } from './clock.js'
import {
  type CoordinateInput,
  type SiblingSet,
  type Version,
  coordinatedSet,
  supersede,
  isDeleted,
  lwwReduce,
  mergeSets,
  resolveSets,
  sameSet,
  setContext,
} from './versions.js'
import { utf8 } from './bytes.js'

/*
 * Sibling sets are generated through realistic histories, not as arbitrary
 * vectors: the merge laws only hold for sets a real cluster can produce, where
 * every context is a join of clocks some client read.
 */

const REPLICAS = ['a', 'b', 'c'] as const
const CLIENTS = 3

type Op =
  | { readonly kind: 'read'; readonly client: number; readonly mask: number }
  | { readonly kind: 'put'; readonly client: number; readonly at: number; readonly blind: boolean; readonly tombstone: boolean }
  | { readonly kind: 'sync'; readonly from: number; readonly to: number }
  | { readonly kind: 'restart'; readonly node: number }
  | { readonly kind: 'wipe'; readonly node: number }

interface Put {
  readonly stored: SiblingSet
  readonly input: CoordinateInput
  readonly dot: Dot
  readonly result: SiblingSet
}

interface History {
  /** Each replica's set at the end. */
  readonly replicas: SiblingSet[]
  /** Every set a replica held or a client read along the way. */
  readonly seen: SiblingSet[]
  /** Every version a coordinator stored (acknowledged at least once). */
  readonly acked: Version[]
  readonly puts: Put[]
}

interface Replica {
  readonly name: string
  incarnation: number
  counter: number
  set: SiblingSet
}

function simulate(ops: readonly Op[]): History {
  const replicas: Replica[] = REPLICAS.map((name) => ({ name, incarnation: 1, counter: 0, set: [] }))
  const contexts: VersionVector[] = Array.from({ length: CLIENTS }, () => ({}))
  const seen: SiblingSet[] = [[]]
  const acked: Version[] = []
  const puts: Put[] = []
  let tick = 0
  const at = (i: number): Replica => replicas[i % replicas.length] as Replica
  for (const op of ops) {
    if (op.kind === 'read') {
      // A quorum read: merge what the chosen replicas answered, keep the join of its clocks.
      const read = mergeSets(...replicas.filter((_, i) => (op.mask >> i) & 1).map((r) => r.set))
      seen.push(read)
      contexts[op.client] = setContext(read)
    } else if (op.kind === 'put') {
      const r = at(op.at)
      const dot = { actor: `${r.name}${r.incarnation}`, counter: ++r.counter }
      const input = { value: op.tombstone ? null : utf8(`v${tick}`), context: op.blind ? {} : (contexts[op.client] as VersionVector), timestamp: tick++ }
      const result = supersede(r.set, input, dot)
      puts.push({ stored: r.set, input, dot, result })
      acked.push(...result.filter((v) => compareDots(v.dot, dot) === 0))
      r.set = result
      seen.push(result)
    } else if (op.kind === 'sync') {
      // Replication, read repair or anti-entropy: one replica merges another's set.
      at(op.to).set = mergeSets(at(op.to).set, at(op.from).set)
      seen.push(at(op.to).set)
    } else {
      // A new incarnation never reissues a dot; a wipe also loses the data (kv679).
      const r = at(op.node)
      r.incarnation++
      r.counter = 0
      if (op.kind === 'wipe') r.set = []
    }
  }
  return { replicas: replicas.map((r) => r.set), seen, acked, puts }
}

const node = fc.integer({ min: 0, max: REPLICAS.length - 1 })
const client = fc.integer({ min: 0, max: CLIENTS - 1 })

/** Histories as lists of operations, so a failing case prints (and shrinks) as the steps that led to it. */
function history(wipes: boolean): fc.Arbitrary<Op[]> {
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('read' as const), client, mask: fc.integer({ min: 1, max: 7 }) }) },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('put' as const), client, at: node, blind: fc.boolean(), tombstone: fc.boolean() }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('sync' as const), from: node, to: node }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant(wipes ? ('wipe' as const) : ('restart' as const)), node }) },
  )
  return fc.array(op, { maxLength: 50 })
}

const dotId = (d: Dot): string => `${d.actor}:${d.counter}`
const dots = (set: SiblingSet): string[] => set.map((v) => dotId(v.dot))
const pick = (h: History, i: number): SiblingSet => h.seen[i % h.seen.length] as SiblingSet

describe('mergeSets on sets from realistic histories', () => {
  it('is idempotent, commutative and associative', () => {
    fc.assert(
      fc.property(history(true), fc.nat(), fc.nat(), fc.nat(), (ops, i, j, k) => {
        const h = simulate(ops)
        const [a, b, c] = [pick(h, i), pick(h, j), pick(h, k)]
        expect(dots(mergeSets(a, a))).toEqual(dots(a))
        expect(dots(mergeSets(mergeSets(a, b), b))).toEqual(dots(mergeSets(a, b)))
        expect(dots(mergeSets(a, b))).toEqual(dots(mergeSets(b, a)))
        expect(dots(mergeSets(mergeSets(a, b), c))).toEqual(dots(mergeSets(a, mergeSets(b, c))))
        expect(dots(mergeSets(mergeSets(a, b), c))).toEqual(dots(mergeSets(a, b, c)))
      }),
      { numRuns: 300 },
    )
  })

  it('returns a canonical set: sorted by dot, no version covered by another', () => {
    fc.assert(
      fc.property(history(true), fc.nat(), fc.nat(), (ops, i, j) => {
        const h = simulate(ops)
        const m = mergeSets(pick(h, i), pick(h, j))
        expect(dots(m)).toEqual(dots([...m].sort((x, y) => compareDots(x.dot, y.dot))))
        for (const u of m) for (const v of m) if (u !== v) expect(covers(u.context, v.dot)).toBe(false)
      }),
      { numRuns: 200 },
    )
  })
})

describe('supersede', () => {
  it('keeps exactly the stored versions the context does not cover, plus the new version', () => {
    fc.assert(
      fc.property(history(true), (ops) => {
        const h = simulate(ops)
        for (const { stored, input, dot, result } of h.puts) {
          const kept = stored.filter((v) => !covers(input.context, v.dot)).map((v) => v.dot)
          expect(dots(result)).toEqual([...kept, dot].sort(compareDots).map(dotId))
          const mine = result.find((v) => compareDots(v.dot, dot) === 0)
          expect(mine).toEqual({ dot, context: input.context, timestamp: input.timestamp, value: input.value })
        }
      }),
      { numRuns: 200 },
    )
  })

  it('turns a blind write into a sibling and collapses siblings under their joined context', () => {
    const first = supersede([], { value: utf8('x'), context: {}, timestamp: 1 }, { actor: 'a1', counter: 1 })
    const both = supersede(first, { value: utf8('y'), context: {}, timestamp: 2 }, { actor: 'a1', counter: 2 })
    expect(dots(both)).toEqual(['a1:1', 'a1:2'])
    const resolved = supersede(both, { value: utf8('xy'), context: setContext(both), timestamp: 3 }, { actor: 'b1', counter: 1 })
    expect(dots(resolved)).toEqual(['b1:1'])
    expect(sameSet(mergeSets(both, resolved), resolved)).toBe(true)
  })
})

describe('no lost writes', () => {
  it('every acknowledged write is present in the merge of all replicas or covered by a present version', () => {
    fc.assert(
      fc.property(history(false), (ops) => {
        const h = simulate(ops)
        const all = mergeSets(...h.replicas)
        const present = new Set(dots(all))
        for (const v of h.acked) {
          const kept = present.has(dotId(v.dot)) || all.some((u) => covers(u.context, v.dot))
          expect(kept, `write ${dotId(v.dot)} was lost`).toBe(true)
        }
      }),
      { numRuns: 300 },
    )
  })

  it('replicas converge once each has merged every other', () => {
    fc.assert(
      fc.property(history(true), (ops) => {
        const h = simulate(ops)
        const all = mergeSets(...h.replicas)
        const synced = h.replicas.map((own) => h.replicas.reduce((acc, other) => mergeSets(acc, other), own))
        for (const s of synced) expect(dots(s)).toEqual(dots(all))
      }),
      { numRuns: 200 },
    )
  })
})

const version = fc.record({
  dot: fc.record({ actor: fc.constantFrom('a1', 'b2', 'c3'), counter: fc.integer({ min: 1, max: 9 }) }),
  context: fc.constant({}),
  // A narrow range of timestamps so ties, broken by the dot, are common.
  timestamp: fc.integer({ min: 0, max: 3 }),
  value: fc.option(fc.uint8Array({ maxLength: 4 }), { nil: null }),
})
const siblings = fc.uniqueArray(version, { selector: (v) => dotId(v.dot), maxLength: 8 })

describe('lwwReduce', () => {
  it('keeps exactly one version, the one with the greatest (timestamp, dot), whatever the order', () => {
    fc.assert(
      fc.property(siblings, (set) => {
        const out = lwwReduce(set)
        expect(out).toHaveLength(set.length === 0 ? 0 : 1)
        if (set.length === 0) return
        const best = out[0] as Version
        expect(set).toContain(best)
        for (const v of set) expect(v.timestamp < best.timestamp || (v.timestamp === best.timestamp && compareDots(v.dot, best.dot) <= 0)).toBe(true)
        expect(lwwReduce([...set].reverse())).toEqual(out)
      }),
      { numRuns: 300 },
    )
  })
})

describe('store modes', () => {
  it('siblings mode is mergeSets and supersede', () => {
    fc.assert(
      fc.property(history(true), fc.nat(), fc.nat(), (ops, i, j) => {
        const h = simulate(ops)
        expect(resolveSets('siblings', pick(h, i), pick(h, j))).toEqual(mergeSets(pick(h, i), pick(h, j)))
        for (const { stored, input, dot, result } of h.puts) expect(coordinatedSet('siblings', stored, input, dot)).toEqual(result)
      }),
      { numRuns: 100 },
    )
  })

  it('lww merge keeps one version and is idempotent, commutative and associative', () => {
    fc.assert(
      fc.property(history(true), fc.nat(), fc.nat(), fc.nat(), (ops, i, j, k) => {
        const h = simulate(ops)
        const [a, b, c] = [pick(h, i), pick(h, j), pick(h, k)]
        const lww = (...sets: SiblingSet[]): string[] => dots(resolveSets('lww', ...sets))
        expect(lww(a, b).length).toBeLessThanOrEqual(1)
        expect(lww(a, a)).toEqual(lww(a))
        expect(lww(resolveSets('lww', a, b), b)).toEqual(lww(a, b))
        expect(lww(a, b)).toEqual(lww(b, a))
        expect(lww(resolveSets('lww', a, b), c)).toEqual(lww(a, resolveSets('lww', b, c)))
      }),
      { numRuns: 100 },
    )
  })

  it('an lww write that saw the stored version wins even when the writer clock lags', () => {
    fc.assert(
      fc.property(
        siblings.filter((s) => s.length > 0),
        (stored) => {
          const dot = { actor: 'z9', counter: 1 }
          const out = coordinatedSet('lww', stored, { value: utf8('new'), context: setContext(stored), timestamp: 0 }, dot)
          expect(dots(out)).toEqual(['z9:1'])
          for (const v of stored) expect((out[0] as Version).timestamp).toBeGreaterThan(v.timestamp)
        },
      ),
      { numRuns: 100 },
    )
  })

  it('an lww blind write older than the stored version is dropped (lossy by design)', () => {
    const stored: Version[] = [{ dot: { actor: 'a1', counter: 1 }, context: {}, timestamp: 10, value: utf8('kept') }]
    expect(coordinatedSet('lww', stored, { value: utf8('lost'), context: {}, timestamp: 5 }, { actor: 'b1', counter: 1 })).toEqual(stored)
  })
})

describe('isDeleted', () => {
  it('is true only when every sibling is a tombstone', () => {
    const tomb: Version = { dot: { actor: 'a1', counter: 1 }, context: {}, timestamp: 0, value: null }
    const live: Version = { dot: { actor: 'b1', counter: 1 }, context: {}, timestamp: 0, value: utf8('x') }
    expect(isDeleted([tomb])).toBe(true)
    expect(isDeleted([tomb, live])).toBe(false)
    expect(isDeleted([])).toBe(true)
  })
})
