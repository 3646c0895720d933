import {
  type CoordinateItem,
  type Dot,
  type HintItem,
  type KvorumError,
  type ReplicaFailure,
  type SiblingSet,
  type StoreDef,
  type VersionVector,
  IndeterminateWriteError,
  NodeDownError,
  errorFromItem,
  QuorumNotMetError,
  TimeoutError,
  covers,
  showKey,
  withDot,
} from '@kvorum/core'
import { checkAborted } from './call.js'
import { CHANNELS, publish } from './events.js'
import { QuorumTracker } from './quorum.js'
import { failureOf, fatalItemError, isFatal, mayHaveApplied } from './replica-errors.js'
import { MAX_REFRESH_RETRIES } from './cluster-view.js'
import type { Runtime } from './runtime.js'
import { type CoordinatorStep, afterCoordinatorFailure, combinedVerdict, nextFallback, upFirst } from './verdicts.js'

/** A write's resulting set, and the clock of the writer's own new version. */
export interface WriteOutcome {
  readonly siblings: SiblingSet
  readonly clock: VersionVector
}

/** Told of the writer's new version once its coordinator has stored it, before it spreads (so even when the write then fails). */
export interface Stored {
  storedAs(dot: Dot, clock: VersionVector): void
}

/** Quorum settings and the one deadline of a write. */
export interface WriteQuorum {
  readonly w: number
  readonly pw: number
  /** When the whole operation must end, ms on the runtime's clock. */
  readonly deadline: number
  /** The operation's configured timeout, for messages. */
  readonly timeoutMs: number
  /**
   * The caller's signal: once aborted, no primary is asked to coordinate (and a
   * coordinate-put still queued is not sent). Once a primary has stored the
   * write, it spreads to the others whatever the signal says.
   */
  readonly signal?: AbortSignal | undefined
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

/** The coordinating primary's answer: the key's new set, the writer's clock and who gave the dot. */
interface Coordinated {
  readonly set: SiblingSet
  readonly dot: Dot
  readonly own: VersionVector
  readonly coordinator: string
  readonly failures: ReplicaFailure[]
}

/**
 * Write a value (null deletes) with the context the writer saw (and the
 * version's ttl, if it has one, which the coordinator turns into its expiry): the first
 * reachable primary assigns the dot, then its resulting sibling set goes to
 * the other primaries, or as hints to fallbacks for the ones that are down.
 * Answers once `w` acks (and `pw` from primaries) are in; late replies go on.
 */
export async function writeRound(
  rt: Runtime,
  store: StoreDef,
  key: Uint8Array,
  value: Uint8Array | null,
  context: VersionVector,
  q: WriteQuorum,
  ttlMs?: number,
  stored?: Stored,
): Promise<WriteOutcome> {
  const placement = rt.view.placement
  const part = placement.ring.partitionOf(key)
  const version = rt.view.cluster.version
  const item = { key, value, context, ttlMs }
  const coordinated = await coordinate(rt, store, item, [...placement.coordinators(part, store)], q, version)
  stored?.storedAs(coordinated.dot, coordinated.own)
  try {
    const sets = placement.writeSets(part, store)
    const out = await spread(rt, store, key, coordinated, sets, placement.fallbacks(part, store), q, version)
    publish(CHANNELS.put, () => ({ client: rt.client, store: store.name, ok: true }))
    return out
  } catch (e) {
    publish(CHANNELS.put, () => ({ client: rt.client, store: store.name, ok: false, code: (e as KvorumError).code }))
    throw e
  }
}

/** Ask primaries in turn to coordinate the write, until one does or one may have applied it. */
async function coordinate(
  rt: Runtime,
  store: StoreDef,
  item: Omit<CoordinateItem, 'timestamp'>,
  primaries: string[],
  q: WriteQuorum,
  version: number,
): Promise<Coordinated> {
  const { key, context } = item
  const failures: ReplicaFailure[] = []
  for (const node of upFirst(primaries, (n) => rt.nodes.isUp(n))) {
    if (rt.time.monotonicMs() >= q.deadline) break
    checkAborted(q.signal, `put of ${showKey(key)}`)
    let step: CoordinatorStep
    try {
      const res = await rt.nodes.batcher(node).coordinatePut(store.name, { ...item, timestamp: rt.time.now() }, q.deadline, version, q.signal)
      if (res.ok) return { set: res.value.siblings, dot: res.value.dot, own: ownClock(context, res.value.dot, res.value.siblings), coordinator: node, failures }
      const fatal = fatalItemError(res.error)
      if (fatal) throw fatal
      failures.push({ node, code: res.error.code, message: res.error.message })
      // An item error is an answer, but one whose code says the write may have applied (a newer
      // node's unknown code, an internal error) must end the put as a thrown failure would.
      step = afterCoordinatorFailure(false, mayHaveApplied(res.error.code))
      if (step === 'next') continue
    } catch (e) {
      step = afterCoordinatorFailure(isFatal(e), mayHaveApplied(e))
      if (step === 'fatal') throw e
      failures.push(failureOf(node, e))
      if (step === 'next') continue
    }
    if (step === 'indeterminate') {
      rt.metrics.quorumFailures++
      throw new IndeterminateWriteError(
        `put of ${showKey(key)}: primary ${node} did not answer; the write may or may not have applied there, and no other primary was tried (it would store the write twice)`,
        failures,
      )
    }
  }
  rt.metrics.quorumFailures++
  if (rt.time.monotonicMs() >= q.deadline) {
    // The deadline passed before any primary took the write (e.g. the read of an update used it up): nothing was stored.
    rt.metrics.timeouts++
    throw new TimeoutError(`put of ${showKey(key)} (no primary coordinated it in time; nothing was stored)`, q.timeoutMs)
  }
  throw new QuorumNotMetError(`put of ${showKey(key)}`, q.w, 0, failures, 'acks (no primary could coordinate the write)')
}

/**
 * Counts acknowledgements in each write set at once: outside a move there is
 * one (the primaries); while a move writes both there are two (old and new
 * replicas), and a write needs its quorum in each (MEMBERSHIP.md). A node
 * counts in every set it belongs to; a hint counts for the sets of the node
 * it stands in for.
 */
class SetQuorums {
  readonly trackers: QuorumTracker[]
  readonly failures: ReplicaFailure[] = []

  constructor(
    readonly sets: readonly (readonly string[])[],
    q: WriteQuorum,
  ) {
    this.trackers = sets.map(
      (set) => new QuorumTracker({ total: Math.min(q.w, set.length), primaries: Math.min(q.pw, set.length) }, { total: set.length, primaries: set.length }),
    )
  }

  private of(node: string): QuorumTracker[] {
    return this.trackers.filter((_, i) => this.sets[i]?.includes(node))
  }

  ack(node: string, primary: boolean): void {
    for (const t of this.of(node)) t.ack(primary)
  }

  fail(node: string, primary: boolean, failure: ReplicaFailure): void {
    for (const t of this.of(node)) t.fail(primary, failure)
    this.failures.push(failure)
  }

  /** A hint on its way for `target`. */
  expect(target: string): void {
    for (const t of this.of(target)) t.expect(false)
  }

  /** The hint for `target` failed (on `failure.node`, the fallback). */
  hintFailed(target: string, failure: ReplicaFailure): void {
    for (const t of this.of(target)) t.fail(false, failure)
    this.failures.push(failure)
  }

  verdict(expired: boolean) {
    return combinedVerdict(this.trackers, expired)
  }

  /** Acknowledgements in the set reads come from. */
  get acks(): number {
    return this.trackers[0]?.acks ?? 0
  }
}

/**
 * Send the coordinator's set to the other writers (hints for those that fail)
 * and wait for the quorum in every write set.
 */
function spread(
  rt: Runtime,
  store: StoreDef,
  key: Uint8Array,
  c: Coordinated,
  sets: readonly (readonly string[])[],
  fallbacks: string[],
  q: WriteQuorum,
  version: number,
): Promise<WriteOutcome> {
  const written = c.set
  const writers = [...new Set(sets.flat())]
  return new Promise<WriteOutcome>((resolve, reject) => {
    const quorums = new SetQuorums(sets, q)
    quorums.failures.push(...c.failures)
    quorums.ack(c.coordinator, true)
    let done = false
    // The deadline timer says so itself: a timer may fire a little before the monotonic clock
    // reaches the deadline, and then no later event would end the round.
    const timer = rt.time.setTimeout(() => finish(true), Math.max(0, q.deadline - rt.time.monotonicMs()))
    const finish = (expired = false) => {
      if (done) return
      const verdict = quorums.verdict(expired || rt.time.monotonicMs() >= q.deadline)
      if (verdict === 'wait') return
      done = true
      rt.time.clearTimeout(timer)
      if (verdict === 'met') return resolve({ siblings: written, clock: c.own })
      rt.metrics.quorumFailures++
      if (verdict === 'timeout') {
        rt.metrics.timeouts++
        return reject(new TimeoutError(`put of ${showKey(key)} (${quorums.acks} of ${q.w} acks; it is stored on ${c.coordinator} and may spread)`, q.timeoutMs))
      }
      const moving = sets.length > 1 ? ' in each of the old and new replica sets' : ''
      reject(
        new QuorumNotMetError(`put of ${showKey(key)} (stored on ${c.coordinator}; it may still spread)`, q.w, quorums.acks, quorums.failures, `acks${moving}`),
      )
    }
    const item = (): HintItem => ({ store: store.name, key, siblings: written })
    const used = new Set<string>()
    const hint = (target: string) => {
      const fallback = nextFallback(fallbacks, used, (n) => rt.nodes.isUp(n))
      if (!fallback) {
        // No node outside the preference list is left (e.g. 3 nodes, n=3): park the hint on
        // the coordinator so the target still gets the write when it returns. It already
        // counted once, so the parked hint does not count toward w.
        rt.background.run('park-hint', parkHint(rt, c.coordinator, target, item(), q.deadline))
        return finish()
      }
      used.add(fallback)
      quorums.expect(target)
      const sent = rt.nodes
        .batcher(fallback)
        .hint(target, item(), q.deadline)
        .then((res) => {
          if (!res.ok) throw errorFromItem(res.error)
          rt.metrics.hintsWritten++
          rt.events.emit('hint', () => ({ store: store.name, key: key.slice(), target, holder: fallback }))
          quorums.ack(target, false)
          finish()
        })
        .catch((e) => {
          quorums.hintFailed(target, failureOf(fallback, e))
          hint(target)
        })
      rt.background.run('hint', sent)
    }
    const send = (node: string, routedWith: number, resent: number) => {
      const merge = rt.nodes.batcher(node).mergePut(store.name, { key, siblings: written }, q.deadline, routedWith)
      rt.inFlight.track(node, store.name, key, written, merge)
      const sent = merge.then(
        async (res) => {
          if (res.ok) {
            quorums.ack(node, true)
            return finish()
          }
          if (res.error.code === 'KV_STALE_METADATA') rt.view.staleRefusals++
          if (res.error.code === 'KV_STALE_METADATA' && resent < MAX_REFRESH_RETRIES && rt.time.monotonicMs() < q.deadline) {
            // MEMBERSHIP rule 5: a merge refused as stale is sent again after the refresh (to a
            // node still among the writers), never turned into a hint for the refusing node.
            await rt.view.refresh()
            const placement = rt.view.placement
            const part = placement.ring.partitionOf(key)
            if (placement.canMerge(node, part, store)) return send(node, rt.view.cluster.version, resent + 1)
            quorums.fail(node, true, { node, ...res.error })
            return finish()
          }
          quorums.fail(node, true, { node, ...res.error })
          if (res.error.code === 'KV_STALE_METADATA') return finish()
          hint(node)
        },
        (e) => {
          quorums.fail(node, true, failureOf(node, e))
          hint(node)
        },
      )
      rt.background.run('replica-write', sent)
    }
    for (const node of writers) {
      if (node === c.coordinator) continue
      if (!rt.nodes.isUp(node)) {
        quorums.fail(node, true, failureOf(node, new NodeDownError(node)))
        hint(node)
        continue
      }
      send(node, version, 0)
    }
    finish()
  })
}

async function parkHint(rt: Runtime, holder: string, target: string, item: HintItem, deadline: number): Promise<void> {
  const res = await rt.nodes.batcher(holder).hint(target, item, Math.max(deadline, rt.time.monotonicMs() + rt.settings.requestTimeoutMs))
  if (!res.ok) throw errorFromItem(res.error)
  rt.metrics.hintsWritten++
  rt.events.emit('hint', () => ({ store: item.store, key: item.key.slice(), target, holder }))
}
