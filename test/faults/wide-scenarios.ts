import { utf8 } from '@kvorum/core'
import type { OpRecord } from '../support/history.js'
import type { FaultHarness } from './harness.js'
import type { Scenario } from './scenarios.js'

/**
 * Five nodes with two failing at once. Every store keeps n=3, w=2, so a key
 * whose three primaries include both dead nodes has one live primary: its
 * write reaches w only with a hint on a fallback (sloppy quorum). Reads use
 * r=1, so such a key can still be read before it is written (the workloads
 * read, then write with the read's context); a read that misses a version
 * makes a sibling, never a loss, on a `siblings` store.
 */
const NODES = 5
const READ_QUORUM = 1
/**
 * Shortest time two nodes stay down together, in client deadlines: the
 * failure detector must first see them fail (the first requests wait out a
 * deadline), and then the writers need time to write through hints, even on
 * a loaded machine (a 2 s outage at load average 30 saw 2 operations).
 */
const OUTAGE_DEADLINES = 4

/** Two nodes that were down together: from once both were dead until the first came back, ms. */
interface Outage {
  readonly nodes: readonly [string, string]
  readonly from: number
  readonly to: number
}

/** The outages each run's script recorded, for {@link sloppyMeasure}. */
const outages = new WeakMap<FaultHarness, Outage[]>()

function record(h: FaultHarness, outage: Outage): void {
  const list = outages.get(h) ?? []
  list.push(outage)
  outages.set(h, list)
  h.log(`${outage.nodes.join(' and ')} were down together for ${outage.to - outage.from} ms`)
}

/** Two distinct nodes to fail in window n: rotates through the pairs, two apart so every node takes a turn. */
function pair(h: FaultHarness, n: number): [string, string] {
  const ids = h.nodeIds
  const a = ids[(ids.length - 1 + n) % ids.length] as string
  const b = ids[(ids.length + 1 + n) % ids.length] as string
  return [a, b]
}

/** How far back {@link pairOfBusyKeys} looks at the keys the writers touch, ms. */
const RECENT_MS = 2000

/**
 * Two nodes both among the primaries of the keys written most in the last
 * {@link RECENT_MS} (the workloads stay on a few keys for seconds), so that
 * killing them leaves those keys one live primary and their writes need a
 * hint. Ties, and a quiet history, fall back to {@link pair}'s rotation.
 */
function pairOfBusyKeys(h: FaultHarness, n: number): [string, string] {
  const ring = h.operator.ring
  const since = Date.now() - RECENT_MS
  const weight = new Map<string, number>()
  for (const workload of ['set', 'register'] as const) {
    for (const op of h.history.of(workload)) {
      if (op.invokedAt < since) continue
      const primaries = [...ring.primaries(ring.partitionOf(utf8(op.key)), 3)].sort()
      for (let i = 0; i < primaries.length; i++)
        for (let j = i + 1; j < primaries.length; j++) {
          const k = `${primaries[i]} ${primaries[j]}`
          weight.set(k, (weight.get(k) ?? 0) + 1)
        }
    }
  }
  const rotation = pair(h, n)
  let best = rotation
  let bestWeight = weight.get([...rotation].sort().join(' ')) ?? 0
  for (const [k, w] of weight) {
    if (w > bestWeight) {
      best = k.split(' ') as [string, string]
      bestWeight = w
    }
  }
  h.log(`${best.join(' and ')} are primaries together of the busiest keys (${bestWeight} operations in ${RECENT_MS} ms)`)
  return best
}

/** A write (not the read before it) that began and ended while both nodes of `o` were down. */
function within(op: OpRecord, o: Outage): boolean {
  return op.invokedAt >= o.from && op.completedAt !== null && op.completedAt <= o.to
}

/**
 * What the outages show: the writes attempted and acknowledged while two
 * nodes were down, and of those the ones to keys that had both dead nodes
 * among their primaries (acknowledged only through a hint). Writable means
 * both kinds were acknowledged.
 */
function sloppyMeasure(h: FaultHarness): { figures: Record<string, number>; violations: string[] } {
  const list = outages.get(h) ?? []
  const ring = h.operator.ring
  let attempted = 0
  let acknowledged = 0
  let bothDownAttempted = 0
  let bothDownAcknowledged = 0
  for (const workload of ['set', 'register'] as const) {
    for (const op of h.history.of(workload)) {
      const o = list.find((x) => within(op, x))
      if (!o) continue
      // The stores keep n=3: the primaries of the key under the starting definition (no membership change here).
      const primaries = ring.primaries(ring.partitionOf(utf8(op.key)), 3)
      const bothDown = o.nodes.every((id) => primaries.includes(id))
      attempted++
      if (bothDown) bothDownAttempted++
      if (op.outcome !== 'ok') continue
      acknowledged++
      if (bothDown) bothDownAcknowledged++
    }
  }
  const violations: string[] = []
  if (list.length === 0) violations.push('no two nodes were ever down together')
  if (acknowledged === 0) violations.push(`no write was acknowledged while two nodes were down (${attempted} attempted)`)
  if (bothDownAcknowledged === 0)
    violations.push(
      `no write to a key with both dead nodes among its primaries was acknowledged (${bothDownAttempted} attempted): sloppy quorum did not carry it`,
    )
  return {
    figures: {
      outages: list.length,
      writesWhileTwoDown: attempted,
      acknowledgedWhileTwoDown: acknowledged,
      writesBothPrimariesDown: bothDownAttempted,
      acknowledgedBothPrimariesDown: bothDownAcknowledged,
    },
    violations,
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)))
}

/** Shared by the five-node scenarios: the node count, the read quorum, the measure. */
const WIDE = { nodes: NODES, readQuorum: READ_QUORUM, measure: sloppyMeasure } as const

export const WIDE_SCENARIOS: readonly Scenario[] = [
  {
    ...WIDE,
    name: 'two-down',
    description:
      'five nodes, n=3, w=2, r=1: two nodes SIGKILLed at the same moment, restarted together a while later (at least four client deadlines); writes to keys with both among their primaries must be acknowledged through hints',
    // The outage's four deadlines (8 s) and a healed tail fit in it.
    minWorkloadMs: 14_000,
    async run({ h, cycles, timeoutMs }) {
      await cycles(async (n, at, when) => {
        await at(0.1)
        const [a, b] = pairOfBusyKeys(h, n)
        await Promise.all([h.kill(a), h.kill(b)])
        const from = Date.now()
        await sleep(Math.max(when(0.6), from + OUTAGE_DEADLINES * timeoutMs) - Date.now())
        record(h, { nodes: [a, b], from, to: Date.now() })
        await Promise.all([h.start(a), h.start(b)])
      })
    },
  },
]

/** Run only on request (`--scenario`), or in the long run: longer five-node failures. */
export const LONG_WIDE_SCENARIOS: readonly Scenario[] = [
  {
    ...WIDE,
    name: 'two-down-overlap',
    description:
      'five nodes, n=3, w=2, r=1: one node SIGKILLed, a second while the first is still down, the first restarted, then the second: the outages overlap rather than coincide',
    async run({ h, cycles }) {
      await cycles(async (n, at) => {
        const [a, b] = pair(h, n)
        await at(0.1)
        await h.kill(a)
        await at(0.3)
        await h.kill(b)
        const from = Date.now()
        await at(0.55)
        record(h, { nodes: [a, b], from, to: Date.now() })
        await h.start(a)
        await at(0.8)
        await h.start(b)
      })
    },
  },
  {
    ...WIDE,
    name: 'two-paused',
    description:
      "five nodes, n=3, w=2, r=1: two nodes SIGSTOPped at the same moment for longer than the clients' deadline, then SIGCONTed: both answer late what they had received",
    async run({ h, cycles, timeoutMs }) {
      await cycles(async (n, at) => {
        const [a, b] = pair(h, n)
        await at(0.15)
        h.pause(a)
        h.pause(b)
        const from = Date.now()
        await sleep(timeoutMs * 3)
        record(h, { nodes: [a, b], from, to: Date.now() })
        h.resume(a)
        h.resume(b)
        await at(1)
      })
    },
  },
]
