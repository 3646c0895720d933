import type { OpRecord } from './history.js'

/**
 * The verdict on one workload, in the terms of Jepsen's set checker:
 * - attempted: operations started;
 * - acknowledged: operations the SDK said succeeded;
 * - lost: acknowledged, yet absent from the final read (and not covered by a
 *   later write that saw it);
 * - unexpected: present in the final read but never attempted;
 * - recovered: failed or indeterminate, yet present;
 * - resurrected (registers): a value an acknowledged write had seen, and so
 *   deleted or replaced, that is present again.
 */
export interface Check {
  readonly attempted: number
  readonly acknowledged: number
  readonly lost: number
  readonly unexpected: number
  readonly recovered: number
  /** Of the recovered: operations the SDK said failed outright (not indeterminate), yet applied. */
  readonly failedButPresent: number
  readonly resurrected: number
  /**
   * Registers: values acknowledged before an acknowledged delete began that
   * the delete's read did not see, so they outlived it. Zero while read and
   * write quorums intersect; a replica that lost its data can break that.
   */
  readonly missedByDelete: number
  /** A few of the lost, unexpected and resurrected values, for failure messages. */
  readonly examples: readonly string[]
}

const EXAMPLES = 10

/**
 * Set-add: each acknowledged add's element must be in its cart at the end.
 * `final` maps a cart to the elements the converged replicas hold.
 */
export function checkSet(ops: readonly OpRecord[], final: ReadonlyMap<string, ReadonlySet<string>>): Check {
  const attempted = new Set(ops.map((o) => `${o.key}/${o.value}`))
  const present = (o: OpRecord) => final.get(o.key)?.has(o.value) ?? false
  const lost = ops.filter((o) => o.outcome === 'ok' && !present(o))
  const recovered = ops.filter((o) => o.outcome !== 'ok' && present(o))
  const unexpected: string[] = []
  for (const [cart, elements] of final) for (const e of elements) if (!attempted.has(`${cart}/${e}`)) unexpected.push(`${cart}/${e}`)
  return {
    attempted: ops.length,
    acknowledged: ops.filter((o) => o.outcome === 'ok').length,
    lost: lost.length,
    unexpected: unexpected.length,
    recovered: recovered.length,
    failedButPresent: recovered.filter((o) => o.outcome === 'fail').length,
    resurrected: 0,
    missedByDelete: 0,
    examples: [...lost.map((o) => `lost ${o.key}/${o.value}`), ...unexpected.map((u) => `unexpected ${u}`)].slice(0, EXAMPLES),
  }
}

/**
 * Registers under delete races. Every put writes a unique value; every write
 * (put or delete) reports the values its read saw, which its context covers.
 * A covered value may be gone; an uncovered acknowledged one must be there;
 * a value covered by an acknowledged write must never be there again.
 */
export function checkRegisters(ops: readonly OpRecord[], final: ReadonlyMap<string, readonly string[]>): Check {
  const puts = new Map(ops.filter((o) => o.kind === 'put').map((o) => [o.value, o]))
  // Value to the writes that saw it: those that may have applied, and those acknowledged.
  const seenBy = new Map<string, OpRecord[]>()
  for (const o of ops) for (const v of o.observed) seenBy.set(v, [...(seenBy.get(v) ?? []), o])
  const present = new Set([...final.values()].flat())
  const lost: string[] = []
  const resurrected: string[] = []
  let recovered = 0
  let failedButPresent = 0
  for (const [value, put] of puts) {
    const covering = seenBy.get(value) ?? []
    const isThere = present.has(value)
    if (put.outcome === 'ok' && !isThere && !covering.some((w) => w.outcome !== 'fail')) lost.push(value)
    if (put.outcome !== 'ok' && isThere) recovered++
    if (put.outcome === 'fail' && isThere) failedButPresent++
    if (isThere && covering.some((w) => w.outcome === 'ok')) resurrected.push(value)
  }
  const unexpected = [...present].filter((v) => !puts.has(v))
  return {
    attempted: ops.length,
    acknowledged: ops.filter((o) => o.outcome === 'ok').length,
    lost: lost.length,
    unexpected: unexpected.length,
    recovered,
    failedButPresent,
    resurrected: resurrected.length,
    missedByDelete: missedByDelete(ops, present),
    examples: [...lost.map((v) => `lost ${v}`), ...unexpected.map((v) => `unexpected ${v}`), ...resurrected.map((v) => `resurrected ${v}`)].slice(0, EXAMPLES),
  }
}

function missedByDelete(ops: readonly OpRecord[], present: ReadonlySet<string>): number {
  const deletes = ops.filter((o) => o.kind === 'delete' && o.outcome === 'ok')
  let missed = 0
  for (const put of ops) {
    if (put.kind !== 'put' || put.outcome !== 'ok' || put.completedAt === null || !present.has(put.value)) continue
    const after = put.completedAt
    if (deletes.some((d) => d.key === put.key && d.invokedAt > after && !d.observed.includes(put.value))) missed++
  }
  return missed
}
