/**
 * Merge helpers for siblings. A merge takes every concurrent value of a key
 * and returns one; the SDK writes it back with the joined context so the
 * siblings collapse.
 */

/**
 * Last writer wins by a timestamp the application keeps in its values.
 * LOSSY: of concurrent writes all but one are dropped. Use only where that is fine.
 */
export function lastWriterWins<T>(timestampOf: (value: T) => number): (values: readonly T[]) => T {
  return (values) => values.reduce((best, v) => (timestampOf(v) > timestampOf(best) ? v : best))
}

/** A grow/shrink counter: per-writer increments and decrements (a PN-counter). */
export interface Counter {
  readonly p: Readonly<Record<string, number>>
  readonly n: Readonly<Record<string, number>>
}

export const counter = {
  empty: (): Counter => ({ p: {}, n: {} }),
  /** The counter's value. */
  value: (c: Counter): number => Object.values(c.p).reduce((a, b) => a + b, 0) - Object.values(c.n).reduce((a, b) => a + b, 0),
  /** Add `by` (negative to subtract) as `writer`, a name unique to this writer. */
  add: (c: Counter, writer: string, by: number): Counter =>
    by >= 0 ? { p: { ...c.p, [writer]: (c.p[writer] ?? 0) + by }, n: c.n } : { p: c.p, n: { ...c.n, [writer]: (c.n[writer] ?? 0) - by } },
  /** Merge siblings: per-writer maximum. */
  merge: (values: readonly Counter[]): Counter => {
    const max = (xs: readonly Readonly<Record<string, number>>[]) => {
      const out: Record<string, number> = {}
      for (const x of xs) for (const k in x) out[k] = Math.max(out[k] ?? 0, x[k] as number)
      return out
    }
    return { p: max(values.map((v) => v.p)), n: max(values.map((v) => v.n)) }
  },
}

/**
 * An observed-remove set: each add gets a unique tag; a remove drops the tags
 * it saw. An add concurrent with a remove survives, so no add is ever lost.
 */
export interface ORSet<T> {
  /** Live elements: tag to element. */
  readonly adds: Readonly<Record<string, T>>
  /** Tags removed. */
  readonly removed: readonly string[]
}

export const orSet = {
  empty: <T>(): ORSet<T> => ({ adds: {}, removed: [] }),
  /** Add an element under a tag unique to this add (e.g. writer id + counter, or a UUID). */
  add: <T>(s: ORSet<T>, element: T, tag: string): ORSet<T> => ({ adds: { ...s.adds, [tag]: element }, removed: s.removed }),
  /** Remove every tag of elements equal (by JSON) to `element` that this replica has seen. */
  remove: <T>(s: ORSet<T>, element: T): ORSet<T> => {
    const key = JSON.stringify(element)
    const gone = Object.keys(s.adds).filter((tag) => JSON.stringify(s.adds[tag]) === key)
    const adds = Object.fromEntries(Object.entries(s.adds).filter(([tag]) => !gone.includes(tag)))
    return { adds, removed: [...s.removed, ...gone] }
  },
  /** Distinct elements, by JSON equality. */
  values: <T>(s: ORSet<T>): T[] => {
    const seen = new Map<string, T>()
    for (const v of Object.values(s.adds)) seen.set(JSON.stringify(v), v)
    return [...seen.values()]
  },
  has: <T>(s: ORSet<T>, element: T): boolean => Object.values(s.adds).some((v) => JSON.stringify(v) === JSON.stringify(element)),
  /** Merge siblings: union of adds minus union of removed tags. */
  merge: <T>(values: readonly ORSet<T>[]): ORSet<T> => {
    const removed = new Set(values.flatMap((v) => v.removed))
    const adds: Record<string, T> = {}
    for (const v of values) for (const [tag, el] of Object.entries(v.adds)) if (!removed.has(tag)) adds[tag] = el
    return { adds, removed: [...removed].sort() }
  },
}
