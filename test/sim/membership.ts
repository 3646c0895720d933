import type { NodeDef } from '@kvorum/core'
import type { Kvorum } from '@kvorum/client'
import type { VirtualClock } from './clock.js'
import type { SimCluster } from './cluster.js'
import { CLIENT_TIMING, type SeedConfig } from './config.js'
import { Random } from '../support/random.js'
import type { Trace } from './trace.js'

/** The membership change a seed runs, and how it ended. */
export interface MembershipRun {
  /** Add a node, remove one, or change the store's n (to `n`). */
  readonly kind: 'add' | 'remove' | 'n'
  readonly n?: number
  /** The step the first driver stops at. */
  readonly stopAtStep: number
  finished: boolean
  target: readonly string[] | null
  drivers: number
}

/** What a membership change needs from its seed's run. */
export interface MembershipContext {
  readonly config: SeedConfig
  readonly clock: VirtualClock
  readonly trace: Trace
  readonly membership: MembershipRun | null
}

/** Virtual time the fault phase may take when it runs a membership change, ms. */
export const MEMBERSHIP_PHASE_MS = 240_000
/** Attempts to connect a client through the faulty network, and the pause between them, ms. */
const CONNECTS = 20
const CONNECT_PAUSE_MS = 500

/** Draw the seed's membership change from its own stream, so the seed's other choices stay as they were. */
export function planMembership(seed: number, config: SeedConfig): MembershipRun {
  const own = new Random(seed ^ 0x6d656d62)
  const kind = config.nodes > 3 && own.chance(0.5) ? 'remove' : 'add'
  const stopAtStep = own.range(1, 2)
  // A quarter of the seeds change the store's n instead (chosen by the seed number, so the
  // other seeds, pinned ones included, keep their runs): up when a node is free, else down.
  const s = config.store
  const n = config.nodes > s.n ? s.n + 1 : Math.max(s.r ?? 1, s.w ?? 1, s.pw ?? 0) < s.n ? s.n - 1 : null
  return seed % 4 === 3 && n !== null
    ? { kind: 'n', n, stopAtStep: 1, finished: false, target: null, drivers: 0 }
    : { kind, stopAtStep, finished: false, target: null, drivers: 0 }
}

/** A client of a driver (or an exporter); the network may refuse its bootstrap for a while. */
export async function connectRetrying(clock: VirtualClock, connect: (name: string) => Promise<Kvorum>, name: string): Promise<Kvorum> {
  for (let i = 1; ; i++) {
    try {
      return await connect(name)
    } catch (e) {
      if (i >= CONNECTS) throw e
      await clock.sleep(CONNECT_PAUSE_MS)
    }
  }
}

/** Drivers may stop (the first on purpose); each next one resumes. */
const MAX_DRIVERS = 4
/** The driver's waits, in virtual ms: drains outlast a client's deadline. */
const DRIVER_OPTIONS = { drainMs: CLIENT_TIMING.timeoutMs + 200, cleanupGraceMs: 300, barrierTimeoutMs: 15_000, maxCopyPasses: 20 } as const

/**
 * The membership change of a seed, beside the workload: plan it, run it with
 * a driver that stops at a chosen step (as if killed), then resume with
 * fresh drivers until it finishes. Drivers go through the faulty network.
 */
export async function changeMembership(run: MembershipContext, cluster: SimCluster, connect: (name: string) => Promise<Kvorum>): Promise<void> {
  const m = run.membership as MembershipRun
  const first = await connectRetrying(run.clock, connect, 'driver1')
  const change = m.kind === 'add' ? { add: [cluster.spares[0] as NodeDef] } : { remove: [(cluster.nodes[cluster.nodes.length - 1] as NodeDef).id] }
  const plan = m.kind === 'n' ? first.planReplicaChange(run.config.store.name, m.n as number) : first.planChange({ ...change, entriesPerStep: 2 })
  m.target = plan.target
  run.trace.event(`membership: ${m.kind}${m.n ? ` → ${m.n}` : ''}, plan ${plan.planId}, ${plan.steps} steps`)
  let kv = first
  for (m.drivers = 1; m.drivers <= MAX_DRIVERS; m.drivers++) {
    try {
      await kv.rebalance(m.drivers === 1 ? plan : undefined, {
        ...DRIVER_OPTIONS,
        onProgress: (p) => {
          if (m.drivers === 1 && p.step === m.stopAtStep && p.phase === 'drain') throw new Error('driver stopped (simulated kill)')
        },
      })
      m.finished = true
      break
    } catch (e) {
      run.trace.event(`membership: driver ${m.drivers} stopped: ${(e as Error).message}`)
    } finally {
      await kv.close(100)
    }
    kv = await connectRetrying(run.clock, connect, `driver${m.drivers + 1}`)
  }
  run.trace.event(`membership: ${m.finished ? 'finished' : 'not finished'} after ${m.drivers} drivers`)
}

/** The change finished, and every node holds its final layout. */
export async function membershipVerdict(run: MembershipContext, cluster: SimCluster): Promise<string[]> {
  const m = run.membership as MembershipRun
  if (!m.finished) return [`membership ${m.kind} did not finish after ${m.drivers} drivers`]
  const out: string[] = []
  for (const [id, engine] of cluster.engines) {
    const def = await engine.getCluster()
    if (!def) continue
    if (def.move) out.push(`${id} still holds a move in progress (${def.move.stage})`)
    if (m.target && JSON.stringify(def.assignment) !== JSON.stringify(m.target)) out.push(`${id}'s assignment is not the plan's target`)
    const held = def.stores.find((s) => s.name === run.config.store.name)?.n
    if (m.kind === 'n' && held !== m.n) out.push(`${id} holds n=${held} for the store, not the plan's ${m.n}`)
  }
  return out
}
