import { type SiblingSet, type StoreDef, QuorumNotMetError, StaleMetadataError, TimeoutError, resolveSets, showKey } from '@kvorum/core'
import { QuorumTracker } from './quorum.js'
import { readRepair } from './read-repair.js'
import { failureOf } from './replica-errors.js'
import type { Runtime } from './runtime.js'
import { firstAsks, quorumVerdict, upFirst } from './verdicts.js'

/** Quorum settings and the one deadline of a read. */
export interface ReadQuorum {
  readonly r: number
  readonly pr: number
  /** When the whole operation must end, ms on the runtime's clock. */
  readonly deadline: number
  /** The operation's configured timeout, for messages. */
  readonly timeoutMs: number
  /** The caller's signal: once aborted, no further replica is asked (and none left unsent in a queue). */
  readonly signal?: AbortSignal | undefined
}

/** A read's merged answer and how many replicas it came from. */
export interface ReadOutcome {
  readonly set: SiblingSet
  readonly replies: number
}

/**
 * Read from the primaries, answer with the merge of the first `r` replies,
 * then, once every asked replica answered or the deadline passed, send the
 * merged set to each replica whose set differs (read repair).
 */
export async function readRound(rt: Runtime, store: StoreDef, key: Uint8Array, q: ReadQuorum): Promise<ReadOutcome> {
  const placement = rt.view.placement
  const version = rt.view.cluster.version
  const primaries = placement.readers(placement.ring.partitionOf(key), store)
  const candidates = upFirst(primaries, (n) => rt.nodes.isUp(n))
  const replies = new Map<string, SiblingSet>()
  // Every primary could still answer, though only r are asked at first.
  const tracker = new QuorumTracker({ total: q.r, primaries: q.pr }, { total: candidates.length, primaries: candidates.length })
  const asked: Promise<void>[] = []
  let stale: StaleMetadataError | undefined
  let answered = false
  let check: (expired?: boolean) => void = () => undefined
  /** Ask the next primary not asked yet; false when none is left. */
  const askNext = (): boolean => {
    const node = candidates[asked.length]
    if (node === undefined || q.signal?.aborted) return false
    const reply = rt.nodes
      .batcher(node)
      .get(store.name, key, q.deadline, version, q.signal)
      .then(
        (res) => {
          if (res.ok) {
            replies.set(node, res.value)
            tracker.ack(true)
            return
          }
          if (res.error.code === 'KV_STALE_METADATA') stale = new StaleMetadataError(res.error.message, res.error.clusterVersion ?? 0)
          tracker.fail(true, { node, ...res.error })
          askNext()
        },
        (e) => {
          tracker.fail(true, failureOf(node, e))
          askNext()
        },
      )
      .finally(() => check())
    asked.push(reply)
    return true
  }
  const outcome = await new Promise<ReadOutcome>((resolve, reject) => {
    const timer = rt.time.setTimeout(() => check(true), Math.max(0, q.deadline - rt.time.monotonicMs()))
    // A replica slower than this gets company: ask one more rather than wait for the deadline.
    const speculate = rt.time.setTimeout(() => {
      if (!answered) askNext()
    }, rt.settings.readSpeculateMs)
    check = (expired = false) => {
      if (answered) return
      // Replies that failed because the deadline passed (never sent in time) make the quorum
      // impossible a moment before the deadline timer fires: that is still a timeout.
      const late = expired || rt.time.monotonicMs() >= q.deadline
      const verdict = quorumVerdict(tracker, late)
      if (verdict === 'wait') return
      answered = true
      rt.time.clearTimeout(timer)
      rt.time.clearTimeout(speculate)
      if (verdict === 'met') return resolve({ set: resolveSets(store.conflict, ...replies.values()), replies: replies.size })
      rt.metrics.quorumFailures++
      if (stale) return reject(stale)
      if (verdict === 'timeout' || late) {
        rt.metrics.timeouts++
        return reject(new TimeoutError(`get of ${showKey(key)} (${tracker.acks} of ${q.r} replies)`, q.timeoutMs))
      }
      const failed = new Set(tracker.failures.map((f) => f.node))
      const silent = candidates.filter((n) => !replies.has(n) && !failed.has(n))
      reject(new QuorumNotMetError(`get of ${showKey(key)}`, q.r, tracker.acks, tracker.failures, 'replies', { of: candidates.length, silent }))
    }
    for (let i = firstAsks(candidates.length, q.r, q.pr, rt.settings.readFromAll); i > 0; i--) askNext()
    check()
  })
  rt.background.run(
    'read-repair',
    settleAll(asked).then(() => readRepair(rt, store, key, primaries.length, replies, q.deadline)),
  )
  return outcome
}

/** Wait for a list of promises that may grow while we wait. */
async function settleAll(list: Promise<void>[]): Promise<void> {
  for (let seen = 0; seen < list.length; seen = list.length) await Promise.allSettled(list)
}
