import { type KeySet, type ReplicaFailure, type StoreDef, KvorumError, QuorumNotMetError, showKey } from '@kvorum/core'
import { checkAborted } from './call.js'
import { MAX_REFRESH_RETRIES } from './cluster-view.js'
import type { KeyResult } from './many.js'
import { failureOf } from './replica-errors.js'
import type { Runtime } from './runtime.js'

/** Sets one `restore` call takes at most (its merges coalesce into store batches per node). */
export const MAX_RESTORE_ITEMS = 4096
/** Rounds of a restore: a key short of its acks for a retryable reason (a timeout, a stale route) is sent again, within the deadline. */
const MAX_RESTORE_ROUNDS = 4

/** What a restore needs: the store, the acks each write set must give, and the call's deadline. */
export interface RestoreRound {
  readonly def: StoreDef
  readonly w: number
  readonly deadline: number
  readonly signal: AbortSignal | undefined
}

/**
 * Merge whole sibling sets into every replica of their keys (the node's
 * merge path: union minus what another version's context covers), as
 * anti-entropy does. Dots and clocks travel as they are, so merging the same
 * sets twice changes nothing, a set that diverged from what a replica holds
 * ends as siblings beside it, and a tombstone whose context covers an
 * imported version keeps it out. A key succeeds once `w` replicas of each
 * write set took it; a key short of that for a retryable reason is sent
 * again (MAX_RESTORE_ROUNDS rounds, within the deadline); there are no
 * hints, so a key still short fails on its own (run it again: idempotent).
 */
export async function restoreSets(rt: Runtime, round: RestoreRound, items: readonly KeySet[]): Promise<KeyResult<null>[]> {
  const results: KeyResult<null>[] = new Array(items.length)
  let pending = items.map((_, i) => i)
  let refreshes = 0
  for (let attempt = 1; pending.length > 0; attempt++) {
    checkAborted(round.signal, `restore into store ${round.def.name}`)
    const version = rt.view.cluster.version
    const outcomes = await Promise.all(pending.map((i) => restoreOne(rt, round, items[i] as KeySet, version)))
    const again: number[] = []
    let stale = false
    pending.forEach((i, j) => {
      const outcome = outcomes[j] as Outcome
      results[i] = outcome
      if (!outcome.ok && outcome.error.retryable) again.push(i)
      stale ||= outcome.stale === true
    })
    // Merging a set again is harmless (merges are idempotent), so a retry cannot do damage.
    if (again.length === 0 || attempt >= MAX_RESTORE_ROUNDS || rt.time.monotonicMs() >= round.deadline) break
    // A replica refused as stale: the cluster moved on; route those keys again with the new definition.
    if (stale && refreshes++ < MAX_REFRESH_RETRIES) await rt.view.refresh()
    pending = again
  }
  return results
}

/** A key's result, and whether a replica refused it as routed with an old definition. */
type Outcome = KeyResult<null> & { stale?: boolean }

async function restoreOne(rt: Runtime, round: RestoreRound, item: KeySet, version: number): Promise<Outcome> {
  const placement = rt.view.placement
  const part = placement.ring.partitionOf(item.key)
  const sets = placement.writeSets(part, round.def)
  const writers = [...new Set(sets.flat())]
  const failures: ReplicaFailure[] = []
  const acked = new Set<string>()
  await Promise.all(
    writers.map(async (node) => {
      try {
        const res = await rt.nodes.batcher(node).mergePut(round.def.name, item, round.deadline, version)
        if (res.ok) acked.add(node)
        else failures.push({ node, ...res.error })
      } catch (e) {
        if (!(e instanceof KvorumError)) throw e
        failures.push(failureOf(node, e))
      }
    }),
  )
  const short = sets.find((set) => set.filter((n) => acked.has(n)).length < Math.min(round.w, set.length))
  if (!short) return { ok: true, value: null }
  const got = short.filter((n) => acked.has(n)).length
  const error = new QuorumNotMetError(`restore of ${showKey(item.key)}`, Math.min(round.w, short.length), got, failures, 'acks')
  return { ok: false, error, stale: failures.some((f) => f.code === 'KV_STALE_METADATA') }
}
