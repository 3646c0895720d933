import {
  type SiblingSet,
  type StoreDef,
  type VersionVector,
  CLUSTER_LIMITS,
  ConditionFailedError,
  InvalidInputError,
  decodeContext,
  descends,
  isGone,
  setContext,
} from '@kvorum/core'

/** How long a written value lives. */
export interface TtlOption {
  /**
   * Time to live, ms: from the writer's clock at the write plus this, the
   * value reads as absent on every replica. 0: never expires. Default the
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

/** When a version written now expires: the call's ttl, else the store's; undefined when it never does. */
export function expiresAtFor(store: StoreDef, ttlMs: number | undefined, nowMs: number): number | undefined {
  const ttl = ttlMs ?? store.ttlMs ?? 0
  return ttl === 0 ? undefined : nowMs + ttl
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
