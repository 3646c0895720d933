import type { NodeDef, NodeProtocol } from '@kvorum/core'
import { type Kvorum, connect } from '@kvorum/client'
import { MemoryTransport, handoffWorker } from '@kvorum/client/testing'
import { type CheckReport, check } from './checker.js'
import { type RunLimits, SimStallError, VirtualClock } from './clock.js'
import { type NodeFaultStats, SimCluster } from './cluster.js'
import { CLIENT_TIMING, type Mutant, type SeedConfig, planSeed } from './config.js'
import { scheduleFaults } from './nemesis.js'
import { CALM, Network, type NetworkStats } from './network.js'
import { Random } from '../support/random.js'
import { SkewedClocks, planSkew } from './skew.js'
import { Trace, type TraceLevel } from './trace.js'
import { WorkloadLog, runWorkload } from './workload.js'

/** Healing work counted over a run: by the clients during the faults, and by the final handoff and repair. */
export interface Healing {
  hintsWritten: number
  readRepairs: number
  siblingsSeenMax: number
  tombstonesReapedDuringRun: number
  finalHintsDelivered: number
  finalKeysRepaired: number
  finalTombstonesReaped: number
}

/** What one seed did and found. */
export interface SeedResult {
  readonly seed: number
  /** Why the seed failed; empty when every check passed. */
  readonly failures: string[]
  readonly attempted: number
  readonly acknowledged: number
  readonly ackedAdds: number
  readonly lost: number
  readonly unexpected: number
  readonly resurrected: number
  readonly divergent: number
  /** Tombstones reaped before their grace period on true time (watched with `clocks` only). */
  readonly earlyReaps: number
  /** Failed operations by error code. */
  readonly errors: ReadonlyMap<string, number>
  /** What the nemesis and the network did. */
  readonly faults: NodeFaultStats & NetworkStats
  readonly healing: Healing
  readonly virtualMs: number
  readonly steps: number
  /** Hash of the whole trace (messages included): equal on every replay of the seed. */
  readonly digest: string
  readonly trace: readonly string[]
}

export interface RunOptions {
  /** How much trace text to keep. Default none (the digest covers everything anyway). */
  readonly trace?: TraceLevel
  /** Plant a bug (tests of the checker only). Default none. */
  readonly mutant?: Mutant
  /**
   * Run a membership change (add a node, or remove one) beside the workload
   * and its faults, with the driver stopped once mid-way and resumed by a
   * fresh driver client. Drawn from its own stream, so the seed's other
   * choices stay as they were. Default false (recorded seeds keep their runs).
   */
  readonly membership?: boolean
  /**
   * The clock nemesis: every node's and client's wall clock skewed by up to
   * minutes and some jumping backwards, workers also writing expiring values,
   * and reaps watched for tombstones younger than the grace period. Drawn
   * from its own stream, like `membership`. Default false.
   */
  readonly clocks?: boolean
  /** With `clocks`: client clocks jump backwards too (SDK deadlines run on monotonic time, so calls across a step still end on time). Default true. */
  readonly clientJumps?: boolean
}

/** The membership change a seed runs, and how it ended. */
interface MembershipRun {
  /** Add a node, remove one, or change the store's n (to `n`). */
  readonly kind: 'add' | 'remove' | 'n'
  readonly n?: number
  /** The step the first driver stops at. */
  readonly stopAtStep: number
  finished: boolean
  target: readonly string[] | null
  drivers: number
}

/** Virtual-time and step budgets of each phase: a run that needs more has hung. */
const PHASE_MS = 60_000
const PHASE_STEPS = 500_000
/** Time after the heal for probes to mark nodes up and late replies and repairs to land, ms. */
const SETTLE_MS = 2000
/** Handoff sweeps before leaving the rest to anti-entropy. */
const MAX_SWEEPS = 5

/** The exact command that replays a seed with its trace. */
export function replayCommand(seed: number, options: RunOptions = {}): string {
  const flags = [
    options.membership && '--membership',
    options.clocks && '--clocks',
    options.clocks && options.clientJumps === false && '--no-client-jumps',
    options.mutant === 'lww' && '--lww',
  ]
  return `npm run sim -- --seed ${seed}${flags.map((f) => (f ? ` ${f}` : '')).join('')}`
}

/** One seed's state, shared by its phases. */
interface Run {
  readonly seed: number
  readonly config: SeedConfig
  readonly rng: Random
  readonly clock: VirtualClock
  readonly trace: Trace
  readonly history: WorkloadLog
  readonly healing: Healing
  /** The budget of the next phase, from now. */
  readonly limits: () => RunLimits
  readonly membership: MembershipRun | null
  /** Skewed clocks (the `clocks` option), or null: every actor reads true virtual time. */
  readonly skew: SkewedClocks | null
}

async function client(cluster: SimCluster, network: Network, name: string, skew: SkewedClocks | null = null): Promise<Kvorum> {
  const transport = new MemoryTransport(cluster.engines as Map<string, NodeProtocol>)
  transport.intercept = network.interceptFor(name)
  return connect({
    seeds: cluster.nodes,
    transport,
    timeoutMs: CLIENT_TIMING.timeoutMs,
    requestTimeoutMs: CLIENT_TIMING.requestTimeoutMs,
    detector: { probeIntervalMs: CLIENT_TIMING.probeIntervalMs },
    // No idle polling: its timers would change every recorded seed's schedule.
    pollIntervalMs: 0,
    time: skew ? skew.time(name) : cluster.time(),
  })
}

/** Clients connect on a calm network; then the faults and the workload run together. */
async function faultPhase(run: Run, cluster: SimCluster, network: Network): Promise<Kvorum[]> {
  const { clock, config, limits } = run
  await clock.run(cluster.init(), limits())
  const clients: Kvorum[] = []
  for (let c = 0; c < config.clients; c++) clients.push(await clock.run(client(cluster, network, `c${c + 1}`, run.skew), limits()))
  network.rates = config.rates
  const names = clients.map((_, c) => `c${c + 1}`)
  scheduleFaults(
    { faults: config.faults, windowMs: config.faultWindowMs, maxFaultMs: config.maxFaultMs, clients: names },
    cluster,
    network,
    run.rng.fork(),
    clock,
  )
  // The lww control keeps the plain workload, so its losses with and without skew compare like for like.
  const expiring = run.skew !== null && config.mutant !== 'lww'
  const work = runWorkload(clients, run.rng.fork(), { config, clock, trace: run.trace, history: run.history, expiring })
  // A membership change's barriers may wait out crashed nodes and stopped drivers: a longer budget.
  const budget = run.membership ? { untilMs: clock.now + MEMBERSHIP_PHASE_MS, maxSteps: clock.steps + PHASE_STEPS * 3 } : limits()
  await clock.run(Promise.all([work, run.membership ? changeMembership(run, cluster, network) : null]), budget)
  return clients
}

/** Virtual time the fault phase may take when it runs a membership change, ms. */
const MEMBERSHIP_PHASE_MS = 240_000
/** Attempts to connect a driver through the faulty network, and the pause between them, ms. */
const DRIVER_CONNECTS = 20
const DRIVER_CONNECT_PAUSE_MS = 500

/** A driver client; the network may refuse its bootstrap for a while. */
async function driverClient(run: Run, cluster: SimCluster, network: Network, name: string): Promise<Kvorum> {
  for (let i = 1; ; i++) {
    try {
      return await client(cluster, network, name)
    } catch (e) {
      if (i >= DRIVER_CONNECTS) throw e
      await run.clock.sleep(DRIVER_CONNECT_PAUSE_MS)
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
async function changeMembership(run: Run, cluster: SimCluster, network: Network): Promise<void> {
  const m = run.membership as MembershipRun
  const first = await driverClient(run, cluster, network, 'driver1')
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
    kv = await driverClient(run, cluster, network, `driver${m.drivers + 1}`)
  }
  run.trace.event(`membership: ${m.finished ? 'finished' : 'not finished'} after ${m.drivers} drivers`)
}

/** Let late faults play out, undo all of them, let the clients settle, and close them. */
async function healPhase(run: Run, cluster: SimCluster, network: Network, clients: readonly Kvorum[]): Promise<void> {
  const { clock, config, limits, healing } = run
  run.trace.event('workload done; healing')
  await clock.advance(config.faultWindowMs + config.maxFaultMs, limits())
  network.heal()
  cluster.healAll()
  await clock.advance(SETTLE_MS, limits())
  await clock.run(Promise.all(clients.map((kv) => kv.close(1000))), limits())
  for (const kv of clients) {
    healing.hintsWritten += kv.stats().hintsWritten
    healing.readRepairs += kv.stats().readRepairs
    healing.siblingsSeenMax = Math.max(healing.siblingsSeenMax, kv.stats().siblingsSeenMax)
  }
  healing.tombstonesReapedDuringRun = run.history.reapedDuringRun
  if (config.reapAtEnd) await clock.advance(config.store.tombstoneGraceMs ?? 0, limits())
}

async function handoffAndRepair(kv: Kvorum, run: Run): Promise<void> {
  const worker = handoffWorker(kv)
  for (let i = 0; i < MAX_SWEEPS; i++) {
    const swept = await worker.sweep()
    run.healing.finalHintsDelivered += swept.delivered
    run.trace.event(`handoff sweep: ${swept.delivered} delivered, ${swept.failed} failed, ${swept.remaining} remaining`)
    if (swept.remaining === 0) break
  }
  const repaired = await kv.repair()
  run.healing.finalKeysRepaired += repaired.keysRepaired
  run.healing.finalTombstonesReaped += repaired.tombstonesReaped
  run.trace.event(`repair: ${repaired.keysRepaired} keys repaired, ${repaired.tombstonesReaped} reaped, ${repaired.partitionsSkipped} skipped`)
}

/** A fresh client delivers hints, runs one repair pass, and checks. */
async function checkPhase(run: Run, cluster: SimCluster, network: Network): Promise<CheckReport> {
  const { clock, limits } = run
  const kv = await clock.run(client(cluster, network, 'checker'), limits())
  if (run.config.mutant !== 'no-repair') await clock.run(handoffAndRepair(kv, run), limits())
  const report = await clock.run(check(cluster, kv, run.config, run.history, run.trace, run.skew ? clock.dateNow() : undefined), limits())
  await clock.run(kv.close(100), limits())
  return report
}

function verdict(report: CheckReport): string[] {
  const out: string[] = []
  const examples = report.set.examples.join(', ')
  if (report.set.lost > 0) out.push(`lost acknowledged adds: ${report.set.lost} (${examples})`)
  if (report.set.unexpected > 0) out.push(`unexpected elements: ${report.set.unexpected} (${examples})`)
  if (report.resurrected.length > 0) out.push(`resurrected: ${report.resurrected.join(', ')}`)
  if (report.divergent.length > 0) out.push(`divergent replicas: ${report.divergent.join(', ')}`)
  return out
}

const NO_FAULTS: NodeFaultStats & NetworkStats = {
  crashes: 0,
  writesLostInCrashes: 0,
  pauses: 0,
  heldRequests: 0,
  messages: 0,
  droppedRequests: 0,
  droppedAnswers: 0,
  duplicated: 0,
  refused: 0,
  timedOut: 0,
}

/** Run one seed from start to verdict. Deterministic: the same seed takes the same path. */
export async function runSeed(seed: number, options: RunOptions = {}): Promise<SeedResult> {
  const rng = new Random(seed)
  const planned = planSeed(rng.fork(), options.mutant ?? null)
  // A membership change takes several seconds of virtual time: longer workers keep writing through it.
  const config = options.membership ? { ...planned, opsPerWorker: planned.opsPerWorker * 4 } : planned
  const clock = new VirtualClock()
  const run: Run = {
    seed,
    config,
    rng,
    clock,
    trace: new Trace(options.trace ?? 'none', () => clock.now),
    history: new WorkloadLog(),
    healing: {
      hintsWritten: 0,
      readRepairs: 0,
      siblingsSeenMax: 0,
      tombstonesReapedDuringRun: 0,
      finalHintsDelivered: 0,
      finalKeysRepaired: 0,
      finalTombstonesReaped: 0,
    },
    limits: () => ({ untilMs: clock.now + PHASE_MS, maxSteps: clock.steps + PHASE_STEPS }),
    membership: null,
    skew: null,
  }
  if (options.clocks) {
    const own = new Random(seed ^ 0x636c6f63)
    const nodes = Array.from({ length: config.nodes }, (_, i) => `n${i + 1}`)
    const actors = [...nodes, ...Array.from({ length: config.clients }, (_, c) => `c${c + 1}`)]
    const plan = planSkew(own, actors, options.clientJumps === false ? nodes : actors, config.faultWindowMs)
    ;(run as { skew: SkewedClocks | null }).skew = new SkewedClocks(clock, plan, run.trace)
  }
  if (options.membership) {
    const own = new Random(seed ^ 0x6d656d62)
    const kind = config.nodes > 3 && own.chance(0.5) ? 'remove' : 'add'
    const stopAtStep = own.range(1, 2)
    // A quarter of the seeds change the store's n instead (chosen by the seed number, so the
    // other seeds, pinned ones included, keep their runs): up when a node is free, else down.
    const s = config.store
    const n = config.nodes > s.n ? s.n + 1 : Math.max(s.r ?? 1, s.w ?? 1, s.pw ?? 0) < s.n ? s.n - 1 : null
    ;(run as { membership: MembershipRun | null }).membership =
      seed % 4 === 3 && n !== null
        ? { kind: 'n', n, stopAtStep: 1, finished: false, target: null, drivers: 0 }
        : { kind, stopAtStep, finished: false, target: null, drivers: 0 }
  }
  const failures: string[] = []
  const onRejection = (e: unknown) => failures.push(`unhandled rejection: ${(e as Error)?.stack ?? String(e)}`)
  let cluster: SimCluster | undefined
  let network: Network | undefined
  let report: CheckReport | undefined
  run.trace.event(`seed ${seed}: ${JSON.stringify(config)}`)
  process.on('unhandledRejection', onRejection)
  try {
    const skew = run.skew
    const clocked = skew ? { timeOf: (id: string) => skew.time(id), watchReaps: true } : {}
    cluster = new SimCluster({ ...config, spares: run.membership?.kind === 'add' ? 1 : 0, ...clocked }, rng.fork(), clock, run.trace)
    network = new Network(cluster, rng.fork(), clock, run.trace, CALM)
    const clients = await faultPhase(run, cluster, network)
    await healPhase(run, cluster, network, clients)
    report = await checkPhase(run, cluster, network)
    failures.push(...verdict(report))
    if (cluster.reaps && cluster.reaps.early.length > 0) failures.push(`tombstones reaped early: ${cluster.reaps.early.slice(0, 3).join(', ')}`)
    if (run.membership) failures.push(...(await clock.run(membershipVerdict(run, cluster), run.limits())))
  } catch (e) {
    failures.push(e instanceof SimStallError ? `stalled: ${e.message}` : `harness error: ${(e as Error)?.stack ?? String(e)}`)
  } finally {
    process.off('unhandledRejection', onRejection)
    cluster?.destroy()
  }
  for (const e of clock.uncaught) failures.push(`uncaught exception in a timer: ${(e as Error)?.stack ?? String(e)}`)
  for (const bug of run.history.bugs) failures.push(`non-Kvorum error from the SDK: ${bug}`)
  return {
    seed,
    failures,
    attempted: run.history.attempted,
    acknowledged: run.history.acknowledged,
    ackedAdds: report?.set.acknowledged ?? 0,
    lost: report?.set.lost ?? 0,
    unexpected: report?.set.unexpected ?? 0,
    resurrected: report?.resurrected.length ?? 0,
    divergent: report?.divergent.length ?? 0,
    earlyReaps: cluster?.reaps?.early.length ?? 0,
    errors: run.history.errors,
    faults: { ...NO_FAULTS, ...cluster?.stats, ...network?.stats },
    healing: run.healing,
    virtualMs: clock.now,
    steps: clock.steps,
    digest: run.trace.digest(),
    trace: run.trace.lines,
  }
}

/** The change finished, and every node holds its final layout. */
async function membershipVerdict(run: Run, cluster: SimCluster): Promise<string[]> {
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
