import {
  type Dot,
  type SiblingSet,
  type StoreDef,
  type VersionVector,
  CLUSTER_LIMITS,
  ConditionFailedError,
  InvalidInputError,
  KvorumError,
  decodeContext,
  descends,
  isGone,
  mayHaveApplied,
  setContext,
} from '@kvorum/core'

/** How long a written value lives. */
export interface TtlOption {
  /**
   * Time to live, ms: from the coordinating node's clock at the write plus
   * this, the value reads as absent on every replica. 0: never expires. Default the
   * store's `ttlMs` (none unless the store sets one).
   */
  readonly ttlMs?: number | undefined
}

/** A put's best-effort conditions, checked against what the read quorum returns before writing. */
export interface PutConditions {
  /** Write only when the key reads as absent (never written, deleted or expired); else KV_CONDITION_FAILED. Default false. */
  readonly ifAbsent?: boolean | undefined
  /** Write only when the key's context is still this one (a get's `context`); else KV_CONDITION_FAILED. Default none. */
  readonly ifUnchanged?: string | undefined
}

/** A checked condition: absent, or unchanged since the clock given. */
export type Condition = { readonly kind: 'absent' } | { readonly kind: 'unchanged'; readonly clock: VersionVector }

/** A call's ttl, checked (0..10 years, whole ms), or undefined for the store's. */
export function checkTtl(ttlMs: number | undefined): number | undefined {
  if (ttlMs === undefined) return undefined
  if (!Number.isInteger(ttlMs) || ttlMs < 0 || ttlMs > CLUSTER_LIMITS.maxTtlMs)
    throw new InvalidInputError(`ttlMs must be a whole number of ms 0..${CLUSTER_LIMITS.maxTtlMs} (0: never expires), got ${ttlMs}`)
  return ttlMs
}

/** The ttl a put writes with (the coordinating node adds it to its clock): the call's, else the store's; undefined when it never expires. */
export function ttlFor(store: StoreDef, ttlMs: number | undefined): number | undefined {
  const ttl = ttlMs ?? store.ttlMs ?? 0
  return ttl === 0 ? undefined : ttl
}

/** A put's condition, checked: at most one of ifAbsent, ifUnchanged and context, since each fixes the context written with. */
export function conditionOf(call: PutConditions & { readonly context?: string | undefined }): Condition | null {
  const given = [call.ifAbsent === true, call.ifUnchanged !== undefined, call.context !== undefined].filter(Boolean).length
  if (given > 1) throw new InvalidInputError('put takes at most one of ifAbsent, ifUnchanged and context: a condition writes with the context it checked')
  if (call.ifAbsent !== undefined && typeof call.ifAbsent !== 'boolean')
    throw new InvalidInputError(`ifAbsent must be true or false, got ${String(call.ifAbsent)}`)
  if (call.ifAbsent) return { kind: 'absent' }
  if (call.ifUnchanged !== undefined) return { kind: 'unchanged', clock: decodeContext(call.ifUnchanged) }
  return null
}

/**
 * Check a condition against the set a read quorum returned (reading the
 * clock at `nowMs` for expiry): the context to write with (the whole set's,
 * so the write supersedes what was read, tombstones and expired versions
 * included), or ConditionFailedError.
 */
export function checkCondition(condition: Condition, set: SiblingSet, nowMs: number, op: string): VersionVector {
  const current = setContext(set)
  if (condition.kind === 'absent' && !isGone(set, nowMs)) throw new ConditionFailedError(op, 'ifAbsent does not hold: the key holds a value')
  if (condition.kind === 'unchanged' && !(descends(current, condition.clock) && descends(condition.clock, current)))
    throw new ConditionFailedError(op, 'ifUnchanged does not hold: the key was written since that context was read')
  return current
}

/**
 * One conditional put across its attempts under a retry policy. An attempt
 * whose write failed may still have stored its value (a timeout, a quorum
 * not met after the coordinator stored it), and the retry's condition read
 * then finds that value: the condition fails on the put's own write. So a
 * failed condition after such an attempt is never the answer: when the read
 * holds a version an earlier attempt stored, the put applied and succeeds
 * with that version's clock; otherwise the earlier may-have-applied error
 * stands (the value read may be the put's own, spread by then).
 */
export class ConditionalPut {
  /** The versions earlier attempts' coordinators stored (at most one per attempt), and the clock each would have handed back. */
  private readonly stored: { readonly dot: Dot; readonly clock: VersionVector }[] = []
  /** The first error of an attempt whose write may have applied. */
  private unsure: KvorumError | null = null

  constructor(readonly condition: Condition) {}

  /** The context to write with, or `applied` with the clock to hand back when an earlier attempt's version is in `set`. */
  check(set: SiblingSet, nowMs: number, op: string): { readonly applied: boolean; readonly clock: VersionVector } {
    try {
      return { applied: false, clock: checkCondition(this.condition, set, nowMs, op) }
    } catch (e) {
      if (!(e instanceof ConditionFailedError)) throw e
      for (const s of this.stored) if (set.some((v) => v.dot.actor === s.dot.actor && v.dot.counter === s.dot.counter)) return { applied: true, clock: s.clock }
      throw this.unsure ?? e
    }
  }

  /** An attempt's coordinator stored its version (the spread to the others may still fail). */
  storedAs(dot: Dot, clock: VersionVector): void {
    this.stored.push({ dot, clock })
  }

  /** An attempt's write failed with `e`. */
  failed(e: unknown): void {
    if (!this.unsure && e instanceof KvorumError && mayHaveApplied(e)) this.unsure = e
  }
}

/** A put's condition (see conditionOf), ready to be checked across its attempts; null when it has none. */
export function conditionalPut(call: PutConditions & { readonly context?: string | undefined }): ConditionalPut | null {
  const condition = conditionOf(call)
  return condition ? new ConditionalPut(condition) : null
}
