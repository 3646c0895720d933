import type { NodeProtocol } from '@kvorum/core'
import { type Kvorum, connect } from '@kvorum/client'
import { MemoryTransport, handoffWorker } from '@kvorum/client/testing'
import { type CheckReport, check } from './checker.js'
import { type RunLimits, SimStallError, VirtualClock } from './clock.js'
import { type NodeFaultStats, SimCluster } from './cluster.js'
import { CLIENT_TIMING, type Mutant, type SeedConfig, planSeed } from './config.js'
import { type ImportFigures, type ImportLog, type ImportPlan, emptyImportLog, importFigures, importAgain, planImports, raceImports } from './imports.js'
import { MEMBERSHIP_PHASE_MS, type MembershipRun, changeMembership, connectRetrying, membershipVerdict, planMembership } from './membership.js'
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
  /** What the import race did (all zero without the `imports` option). */
  readonly imports: ImportFigures
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
  /**
   * The import race: a client exports the store mid-workload and another
   * imports that export once or twice while the workers go on, then the
   * checks import again and require nothing to change. Drawn from its own
   * stream, like `membership`. Default false (recorded seeds keep their runs).
   */
  readonly imports?: boolean
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
    options.imports && '--imports',
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
  /** The import race (the `imports` option), or null. */
  readonly imports: ImportPlan | null
  readonly importLog: ImportLog
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
  const connect = (name: string) => connectRetrying(clock, (n) => client(cluster, network, n), name)
  const imports = run.imports ? raceImports(run.imports, importContext(run), connect) : null
  await clock.run(Promise.all([work, run.membership ? changeMembership(run, cluster, connect) : null, imports]), budget)
  return clients
}

function importContext(run: Run) {
  return { clock: run.clock, trace: run.trace, log: run.importLog, mutant: run.config.mutant, store: run.config.store.name }
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
/** The final checks' report, and what importing again changed (failures; empty without imports). */
type FinalReport = CheckReport & { readonly importedAgain: string[] }

async function checkPhase(run: Run, cluster: SimCluster, network: Network): Promise<FinalReport> {
  const { clock, limits } = run
  const kv = await clock.run(client(cluster, network, 'checker'), limits())
  if (run.config.mutant !== 'no-repair') await clock.run(handoffAndRepair(kv, run), limits())
  const goneAtMs = run.skew ? clock.dateNow() : undefined
  const report = await clock.run(check(cluster, kv, run.config, run.history, run.trace, goneAtMs), limits())
  const again = run.imports ? await clock.run(importAgain(cluster, kv, run.config, importContext(run), goneAtMs), limits()) : []
  await clock.run(kv.close(100), limits())
  return { ...report, importedAgain: again }
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
    membership: options.membership ? planMembership(seed, config) : null,
    skew: null,
    imports: options.imports ? planImports(new Random(seed ^ 0x696d7074), config.faultWindowMs) : null,
    importLog: emptyImportLog(),
  }
  if (options.clocks) {
    const own = new Random(seed ^ 0x636c6f63)
    const nodes = Array.from({ length: config.nodes }, (_, i) => `n${i + 1}`)
    const actors = [...nodes, ...Array.from({ length: config.clients }, (_, c) => `c${c + 1}`)]
    const plan = planSkew(own, actors, options.clientJumps === false ? nodes : actors, config.faultWindowMs)
    ;(run as { skew: SkewedClocks | null }).skew = new SkewedClocks(clock, plan, run.trace)
  }
  const failures: string[] = []
  const onRejection = (e: unknown) => failures.push(`unhandled rejection: ${(e as Error)?.stack ?? String(e)}`)
  let cluster: SimCluster | undefined
  let network: Network | undefined
  let report: FinalReport | undefined
  run.trace.event(`seed ${seed}: ${JSON.stringify(config)}`)
  process.on('unhandledRejection', onRejection)
  try {
    const skew = run.skew
    const clocked = skew ? { timeOf: (id: string) => skew.time(id), watchReaps: true } : {}
    cluster = new SimCluster({ ...config, spares: run.membership?.kind === 'add' ? 1 : 0, ...clocked }, rng.fork(), clock, run.trace)
    network = new Network(cluster, rng.fork(), clock, run.trace, CALM)
    network.copiesCoordinates = config.mutant === 'copy-coordinates'
    const clients = await faultPhase(run, cluster, network)
    await healPhase(run, cluster, network, clients)
    report = await checkPhase(run, cluster, network)
    failures.push(...verdict(report))
    if (cluster.reaps && cluster.reaps.early.length > 0) failures.push(`tombstones reaped early: ${cluster.reaps.early.slice(0, 3).join(', ')}`)
    failures.push(...report.importedAgain)
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
    imports: importFigures(run.importLog),
    healing: run.healing,
    virtualMs: clock.now,
    steps: clock.steps,
    digest: run.trace.digest(),
    trace: run.trace.lines,
  }
}
