import {
  type HintItem, type ItemError, type ReplicaFailure, type SiblingSet, type StoreDef, type VersionVector, IndeterminateWriteError,
  InvalidInputError, KvorumError, NodeUnavailableError, QuorumNotMetError, StaleMetadataError, TimeoutError, TooManySiblingsError,
  type Dot, covers, resolveSets, sameSet, showKey, withDot,
} from '@kvorum/core'
import { QuorumTracker } from './quorum.js'
import type { Runtime } from './runtime.js'

/** A write's resulting set, and the clock of the writer's own new version. */
export interface WriteOutcome {
  readonly siblings: SiblingSet
  readonly clock: VersionVector
}

/**
 * The context to hand back to a writer: its own version's clock when that
 * covers nothing the writer has not seen. A version vector cannot leave holes:
 * if the coordinator also holds a concurrent version whose dot falls under the
 * new clock (counters are node-wide), handing that clock back would let the
 * writer's next put drop a version it never saw. Then the writer keeps the
 * context it wrote with, and its next put becomes a sibling instead.
 */
export function ownClock(context: VersionVector, dot: Dot, siblings: SiblingSet): VersionVector {
  const own = withDot(context, dot)
  const unseen = siblings.some((v) => !(v.dot.actor === dot.actor && v.dot.counter === dot.counter) && covers(own, v.dot))
  return unseen ? context : own
}

/** Quorum settings of one operation. */
export interface WriteQuorum {
  readonly w: number
  readonly pw: number
}
export interface ReadQuorum {
  readonly r: number
  readonly pr: number
}

function failureOf(node: string, e: unknown): ReplicaFailure {
  if (e instanceof KvorumError) return { node, code: e.code, message: e.message }
  return { node, code: 'KV_NODE_ERROR', message: String((e as Error)?.message ?? e) }
}

/** Item errors that mean the request itself is wrong: retrying on another node will not help. */
function fatalItemError(error: ItemError): KvorumError | null {
  switch (error.code) {
    case 'KV_STALE_METADATA':
      return new StaleMetadataError(error.message, error.clusterVersion ?? 0)
    case 'KV_TOO_MANY_SIBLINGS':
      return new TooManySiblingsError(error.message)
    case 'KV_INVALID_INPUT':
      return new InvalidInputError(error.message)
    default:
      return null
  }
}

/** True when a failed request may still have been applied by the node. */
function mayHaveApplied(e: unknown): boolean {
  return e instanceof TimeoutError || (e instanceof NodeUnavailableError && e.mayHaveApplied)
}

function fatalError(e: unknown): boolean {
  return e instanceof StaleMetadataError || e instanceof InvalidInputError || e instanceof TooManySiblingsError || (e instanceof KvorumError && e.code === 'KV_UNKNOWN_STORE')
}

/** Primaries the detector thinks are up first, then the others as a last resort, in preference order. */
function upFirst(rt: Runtime, nodes: readonly string[]): string[] {
  return [...nodes.filter((n) => rt.detector.isUp(n)), ...nodes.filter((n) => !rt.detector.isUp(n))]
}

/**
 * Write a value (null deletes) with the context the writer saw: the first
 * reachable primary assigns the dot, then its resulting sibling set goes to
 * the other primaries, or as hints to fallbacks for the ones that are down.
 * Answers once `w` acks (and `pw` from primaries) are in; late replies go on.
 * Returns the key's new set and the clock of the writer's own version: the
 * context to hand back to the writer, which must not cover concurrent
 * siblings the writer never saw.
 */
export async function coordinatePut(
  rt: Runtime, store: StoreDef, key: Uint8Array, value: Uint8Array | null,
  context: VersionVector, q: WriteQuorum, deadline: number,
): Promise<WriteOutcome> {
  const order = rt.ring.order(rt.ring.partitionOf(key), store.n)
  const primaries = order.slice(0, store.n)
  const fallbacks = order.slice(store.n)
  const failures: ReplicaFailure[] = []
  let maybeApplied = false
  let set: SiblingSet | undefined
  let own: VersionVector = context
  let coordinator = ''
  for (const node of upFirst(rt, primaries)) {
    if (Date.now() >= deadline) break
    try {
      const res = await rt.batcher(node).coordinate(store.name, { key, value, context, timestamp: Date.now() }, deadline)
      if (res.ok) {
        set = res.value.siblings
        own = ownClock(context, res.value.dot, res.value.siblings)
        coordinator = node
        break
      }
      const fatal = fatalItemError(res.error)
      if (fatal) throw fatal
      failures.push({ node, code: res.error.code, message: res.error.message })
    } catch (e) {
      if (fatalError(e)) throw e
      failures.push(failureOf(node, e))
      // A primary that timed out, or lost the connection after the request went out, may have
      // applied the write. Then no other primary may coordinate it: that would store the same
      // write a second time under another dot, a later write that saw only one copy would
      // cover only that one, and the other would come back (a deleted value reappearing).
      if (mayHaveApplied(e)) {
        maybeApplied = true
        break
      }
    }
  }
  if (!set) {
    rt.metrics.quorumFailures++
    if (maybeApplied) throw new IndeterminateWriteError(`put of ${showKey(key)}: primary ${failures[failures.length - 1]?.node} did not answer; the write may or may not have applied there, and no other primary was tried (it would store the write twice)`, failures)
    throw new QuorumNotMetError(`put of ${showKey(key)}`, q.w, 0, failures, 'acks (no primary could coordinate the write)')
  }
  const written = set
  return new Promise<WriteOutcome>((resolve, reject) => {
    const tracker = new QuorumTracker({ total: q.w, primaries: q.pw }, { total: primaries.length, primaries: primaries.length })
    tracker.failures.push(...failures)
    tracker.ack(true)
    let done = false
    const timer = setTimeout(() => finish(), Math.max(0, deadline - Date.now()))
    const finish = () => {
      if (done) return
      if (!tracker.met && !tracker.impossible && Date.now() < deadline) return
      done = true
      clearTimeout(timer)
      if (tracker.met) return resolve({ siblings: written, clock: own })
      rt.metrics.quorumFailures++
      if (!tracker.impossible) {
        rt.metrics.timeouts++
        return reject(new TimeoutError(`put of ${showKey(key)} (${tracker.acks} of ${q.w} acks; it is stored on ${coordinator} and may spread)`, deadline - Date.now()))
      }
      reject(new QuorumNotMetError(`put of ${showKey(key)} (stored on ${coordinator}; it may still spread)`, q.w, tracker.acks, tracker.failures, 'acks'))
    }
    const usedFallbacks = new Set<string>()
    const hint = (target: string) => {
      const fallback = fallbacks.find((f) => !usedFallbacks.has(f) && rt.detector.isUp(f))
      if (!fallback) {
        // No node outside the preference list is left (e.g. 3 nodes, n=3): park the hint on
        // the coordinator so the target still gets the write when it returns. It already
        // counted once, so the parked hint does not count toward w.
        rt.background(parkHint(rt, coordinator, target, { store: store.name, key, siblings: written }, deadline))
        return finish()
      }
      usedFallbacks.add(fallback)
      tracker.expect(false)
      const sent = rt.batcher(fallback).hint(target, { store: store.name, key, siblings: written }, deadline).then((res) => {
        if (!res.ok) throw new KvorumError(res.error.code, res.error.message)
        rt.metrics.hintsWritten++
        tracker.ack(false)
        finish()
      }).catch((e) => {
        tracker.fail(false, failureOf(fallback, e))
        hint(target)
      })
      rt.background(sent)
    }
    for (const node of primaries) {
      if (node === coordinator) continue
      if (!rt.detector.isUp(node)) {
        tracker.fail(true, { node, code: 'KV_NODE_DOWN', message: 'marked down by the failure detector' })
        hint(node)
        continue
      }
      const merge = rt.batcher(node).merge(store.name, { key, siblings: written }, deadline)
      rt.inFlight.track(node, store.name, key, written, merge)
      const sent = merge.then((res) => {
        if (res.ok) {
          tracker.ack(true)
          return finish()
        }
        if (res.error.code === 'KV_STALE_METADATA') rt.refreshSoon()
        tracker.fail(true, { node, ...res.error })
        hint(node)
      }, (e) => {
        tracker.fail(true, failureOf(node, e))
        hint(node)
      })
      rt.background(sent)
    }
    finish()
  })
}

async function parkHint(rt: Runtime, holder: string, target: string, item: HintItem, deadline: number): Promise<void> {
  const res = await rt.batcher(holder).hint(target, item, Math.max(deadline, Date.now() + rt.requestTimeoutMs))
  if (res.ok) rt.metrics.hintsWritten++
}

/** A read's merged answer and the replies it came from. */
export interface ReadOutcome {
  readonly set: SiblingSet
  readonly replies: number
}

/**
 * Read from the primaries, answer with the merge of the first `r` replies,
 * then, once every replica answered or the deadline passed, send the merged
 * set to each replica whose set differs (read repair).
 */
export async function coordinateGet(rt: Runtime, store: StoreDef, key: Uint8Array, q: ReadQuorum, deadline: number): Promise<ReadOutcome> {
  const primaries = rt.ring.primaries(rt.ring.partitionOf(key), store.n)
  const candidates = upFirst(rt, primaries)
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
    if (node === undefined) return false
    const reply = rt.batcher(node).get(store.name, key, deadline).then((res) => {
      if (res.ok) {
        replies.set(node, res.value)
        tracker.ack(true)
        return
      }
      if (res.error.code === 'KV_STALE_METADATA') stale = new StaleMetadataError(res.error.message, res.error.clusterVersion ?? 0)
      tracker.fail(true, { node, ...res.error })
      askNext()
    }, (e) => {
      tracker.fail(true, failureOf(node, e))
      askNext()
    }).finally(() => check())
    asked.push(reply)
    return true
  }
  const outcome = await new Promise<ReadOutcome>((resolve, reject) => {
    const timer = setTimeout(() => check(true), Math.max(0, deadline - Date.now()))
    // A replica slower than this gets company: ask one more rather than wait for the deadline.
    const speculate = setTimeout(() => {
      if (!answered) askNext()
    }, rt.readSpeculateMs)
    check = (expired = false) => {
      if (answered) return
      if (tracker.met) {
        answered = true
        clearTimeout(timer)
        clearTimeout(speculate)
        return resolve({ set: resolveSets(store.conflict, ...replies.values()), replies: replies.size })
      }
      if (!tracker.impossible && !expired) return
      answered = true
      clearTimeout(timer)
      clearTimeout(speculate)
      rt.metrics.quorumFailures++
      if (stale) return reject(stale)
      if (!tracker.impossible) {
        rt.metrics.timeouts++
        return reject(new TimeoutError(`get of ${showKey(key)} (${tracker.acks} of ${q.r} replies)`, deadline - Date.now()))
      }
      reject(new QuorumNotMetError(`get of ${showKey(key)}`, q.r, tracker.acks, tracker.failures))
    }
    const first = rt.readFromAll ? candidates.length : Math.max(q.r, q.pr)
    for (let i = 0; i < first; i++) askNext()
    check()
  })
  rt.background(settleAll(asked).then(() => readRepair(rt, store, key, replies, deadline)))
  return outcome
}

/** Wait for a list of promises that may grow while we wait. */
async function settleAll(list: Promise<void>[]): Promise<void> {
  for (let seen = 0; seen < list.length; seen = list.length) await Promise.allSettled(list)
}

function readRepair(rt: Runtime, store: StoreDef, key: Uint8Array, replies: Map<string, SiblingSet>, deadline: number): Promise<unknown> {
  if (replies.size < 2 && replies.size === rt.ring.primaries(rt.ring.partitionOf(key), store.n).length) return Promise.resolve()
  const merged = resolveSets(store.conflict, ...replies.values())
  const stale = [...replies].filter(([, set]) => !sameSet(set, merged))
  const repairs = stale.filter(([node, set]) => {
    // Behind only by puts of ours on their way there (their merges or hints bring them) or
    // acknowledged there since it answered: no repair needed.
    const known = rt.inFlight.known(node, store.name, key)
    if (known.length === 0) return true
    const coming = resolveSets(store.conflict, set, ...known)
    if (!sameSet(resolveSets(store.conflict, coming, merged), coming)) return true
    rt.metrics.readRepairsSkipped++
    return false
  }).map(([node]) => {
    rt.metrics.readRepairs++
    return rt.batcher(node).merge(store.name, { key, siblings: merged }, Math.max(deadline, Date.now() + rt.requestTimeoutMs)).catch(() => undefined)
  })
  return Promise.all(repairs)
}
