import { type Check, checkRegisters, checkSet } from '../support/set-checker.js'
import { type Convergence, type DaemonReport, converge, repairDaemon } from './converge.js'
import { FaultHarness } from './harness.js'
import { fromUtf8 } from '@kvorum/core'
import type { OpRecord } from '../support/history.js'
import { type DotAudit, type FinalRead, auditDots, cartElements, finalRead, registerValues } from './inspect.js'
import { WORKLOADS, type Workload } from './protocol.js'
import type { Scenario } from './scenarios.js'
import { Random } from '../support/random.js'
import { type SdkReport, sdkReports, sdkViolations } from './sdks.js'

/** How long and how hard to run one scenario. */
export interface RunOptions {
  /** Workload time, ms; longer when the fault script overruns its phase (the healed tail still follows it). */
  readonly durationMs: number
  readonly seed: number
  /** Longest fault window, ms: a long run repeats the fault once per window. Default: one window. */
  readonly cycleMs?: number
  /** Longest wait for convergence after the writers stop, ms. Default 30,000. */
  readonly convergeBudgetMs?: number
  readonly nodes?: number
  readonly clients?: number
}

/** Everything a run found; `checks` has one row per workload. */
export interface ScenarioResult {
  readonly scenario: string
  readonly seed: number
  /** How long the writers ran, ms: the workload asked for, or longer when the fault script overran. */
  readonly durationMs: number
  readonly checks: Record<Workload, Check>
  readonly convergence: Convergence
  /** The repair passes that ran beside the writers. */
  readonly background: DaemonReport
  /** Keys whose primaries still disagreed at the final read. */
  readonly divergentKeys: number
  readonly audit: DotAudit
  readonly incarnations: readonly string[]
  readonly faults: readonly string[]
  readonly errors: Record<Workload, Record<string, number>>
  /** Client processes that did not exit cleanly, with their stderr. */
  readonly clientFailures: readonly string[]
  /** Each client process's SDK: the definitions it held, its own adds. */
  readonly sdks: readonly SdkReport[]
  /** The cluster version the nodes hold at the end. */
  readonly finalVersion: number
  /** A membership change ran: every SDK must have started before it. */
  readonly membership: boolean
  /** What the scenario's own measure found ({@link Scenario.measure}); empty without one. */
  readonly measured: { readonly figures: Record<string, number>; readonly violations: readonly string[] }
  /** For each register key in a failure example: its operations and final versions, to explain it. */
  readonly evidence: readonly string[]
  readonly wallMs: number
}

/** The SDK deadlines of the client processes, ms. */
const TIMEOUT_MS = 2000
const REQUEST_TIMEOUT_MS = 500
/** A repair pass this often during the workload, as a repair daemon would run. */
const REPAIR_INTERVAL_MS = 3000
/** Register keys rest after this long; longer than the tombstone grace (5 s), so their tombstones get reaped during the run. */
const REGISTER_EPOCH_MS = 5000
/** The last part of the workload runs with every fault healed. */
const FAULT_PHASE = 0.85

function sleepUntil(at: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())))
}

/**
 * Longest the fault script may overrun its phase, ms: the writers then go on
 * until it ends and a healed tail after it, so a slow membership change on a
 * busy machine still has writers through all of it and after. The client
 * processes stop on their own after the workload and this much.
 */
const MAX_OVERRUN_MS = 180_000

/** The workload every client process runs: `durationMs`, and as long after as the parent keeps it going (bounded). */
function workload(durationMs: number) {
  const bound = durationMs + MAX_OVERRUN_MS
  return {
    durationMs: bound,
    maxOps: Math.ceil(bound / 1000) * 2000,
    timeoutMs: TIMEOUT_MS,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    loops: { set: 2, lww: 2, register: 1 },
    cartsPerEpoch: 3,
    epochMs: 10_000,
    registerKeys: 12,
    registerEpochMs: REGISTER_EPOCH_MS,
    thinkMs: 20,
  }
}

/**
 * Start the clients and a background repairer, run the fault script in
 * windows, stop the writers. Returns the repairer's report and how long the
 * writers ran, ms.
 */
async function faultPhase(h: FaultHarness, scenario: Scenario, options: RunOptions): Promise<{ background: DaemonReport; workloadMs: number }> {
  let workloadMs = 0
  const d = options.durationMs
  const rng = new Random(options.seed)
  const startedAt = await h.startClients(workload(d), options.seed)
  const daemon = repairDaemon(h, REPAIR_INTERVAL_MS)
  try {
    const phase = d * FAULT_PHASE
    const windows = Math.max(1, Math.round(phase / (options.cycleMs ?? phase)))
    const windowMs = phase / windows
    await scenario.run({
      h,
      timeoutMs: TIMEOUT_MS,
      random: (n) => rng.int(n),
      async cycles(cycle) {
        for (let n = 0; n < windows; n++) {
          const when = (f: number) => startedAt + (n + f) * windowMs
          await sleepUntil(when(0))
          await cycle(n, (f) => sleepUntil(when(f)), when)
        }
      },
    })
    // The healed tail follows the faults even when they overran their phase.
    await sleepUntil(Math.max(startedAt + d, Date.now() + d * (1 - FAULT_PHASE)))
    await h.stopClients()
    workloadMs = Date.now() - startedAt
  } finally {
    // Stopped on every path: a repairer left running would outlive the cluster.
    const report = await daemon.stop()
    h.log(
      `clients stopped; background repair: ${report.passes} passes (${report.failedPasses} failed), ${report.keysRepaired} keys repaired, ${report.tombstonesReaped} tombstones reaped`,
    )
  }
  return { background: await daemon.stop(), workloadMs }
}

/** Client processes that did not exit cleanly or did not finish their loops. */
async function clientFailures(h: FaultHarness): Promise<string[]> {
  const out: string[] = []
  for (const c of h.clients) {
    const exit = await c.exited
    if (exit.code !== 0) out.push(`client ${c.worker} exited ${JSON.stringify(exit)}: ${c.output().slice(-2000)}`)
    // A client that never said done did not finish its loops, so its last operations are unknown.
    else if (!h.sdks.get(c.worker)?.done) out.push(`client ${c.worker} exited without reporting done`)
  }
  return out
}

/**
 * One scenario end to end: a fresh cluster, the client processes running
 * every workload while the fault script runs, then stop the writers, heal,
 * converge (handoff and repair), read every key from every replica, check.
 */
export async function runScenario(scenario: Scenario, options: RunOptions): Promise<ScenarioResult> {
  const wallStart = Date.now()
  // A scenario's own node count is the least it needs: `--nodes` can raise it, never lower it.
  const nodes = Math.max(options.nodes ?? 0, scenario.nodes ?? 0)
  const h = await FaultHarness.start({
    ...(nodes > 0 ? { nodes } : {}),
    ...(options.clients ? { clients: options.clients } : {}),
    ...(scenario.idleClient ? { idleClient: true } : {}),
    ...(scenario.readQuorum === undefined ? {} : { readQuorum: scenario.readQuorum }),
  })
  try {
    const { background, workloadMs } = await faultPhase(h, scenario, options)
    const measured = scenario.measure?.(h) ?? { figures: {}, violations: [] }
    await h.heal()
    // A membership change may have moved the replicas: check against the definition the nodes hold now.
    await h.refreshOperator()
    const convergence = await converge(h, options.convergeBudgetMs ?? 30_000)
    h.log(convergence.converged ? `converged in ${convergence.ms} ms` : `did not converge: ${convergence.lastDisagreement}`)
    const reads = { set: await finalRead(h, 'set'), lww: await finalRead(h, 'lww'), register: await finalRead(h, 'register') }
    const checks: Record<Workload, Check> = {
      set: checkSet(h.history.of('set'), cartElements(reads.set)),
      lww: checkSet(h.history.of('lww'), cartElements(reads.lww)),
      register: checkRegisters(h.history.of('register'), registerValues(reads.register)),
    }
    return {
      scenario: scenario.name,
      seed: options.seed,
      durationMs: workloadMs,
      checks,
      convergence,
      background,
      divergentKeys: WORKLOADS.reduce((n, w) => n + reads[w].divergent, 0),
      audit: await auditDots(h),
      incarnations: [...h.incarnations],
      faults: [...h.faults],
      errors: { set: h.history.errors('set'), lww: h.history.errors('lww'), register: h.history.errors('register') },
      clientFailures: await clientFailures(h),
      sdks: sdkReports(h, h.history.of('set'), cartElements(reads.set)),
      finalVersion: h.operator.cluster.version,
      membership: scenario.idleClient === true,
      measured,
      evidence: evidence(h.history.of('register'), reads.register, checks.register),
      wallMs: Date.now() - wallStart,
    }
  } finally {
    await h.close()
  }
}

/** The history and final versions of every register key a failure example names. */
function evidence(ops: readonly OpRecord[], read: FinalRead, check: Check): string[] {
  const keys = new Set(check.examples.map((e) => e.split(' ')[1]?.split('=')[0] ?? ''))
  const out: string[] = []
  for (const key of keys) {
    const history = ops
      .filter((o) => o.key === key)
      .sort((a, b) => a.invokedAt - b.invokedAt)
      .map(
        (o) =>
          `  ${o.invokedAt}..${o.completedAt ?? '?'} w${o.worker} ${o.kind} ${o.value} -> ${o.outcome}${o.error ? ` ${o.error}` : ''} saw [${o.observed.join(' ')}]`,
      )
    const versions = (read.sets.get(key) ?? []).map(
      (v) => `  ${v.dot.actor}:${v.dot.counter} ${v.value === null ? 'tombstone' : fromUtf8(v.value)} context ${JSON.stringify(v.context)}`,
    )
    out.push(`${key}:\n${history.join('\n')}\n final:\n${versions.join('\n')}`)
  }
  return out
}

/**
 * What must hold after every scenario, as readable failures (empty when all
 * holds): nothing acknowledged lost and nothing unexpected on the siblings
 * stores, no covered value back, replicas converged, no dot reused, every
 * incarnation new, every client process clean. The lww control's loss is
 * measured, not judged.
 */
export function violations(r: ScenarioResult): string[] {
  const out: string[] = []
  for (const w of ['set', 'register'] as const) {
    const c = r.checks[w]
    if (c.lost > 0) out.push(`${w}: ${c.lost} acknowledged lost (${c.examples.join(', ')})`)
    if (c.unexpected > 0) out.push(`${w}: ${c.unexpected} unexpected (${c.examples.join(', ')})`)
    if (c.resurrected > 0) out.push(`${w}: ${c.resurrected} resurrected (${c.examples.join(', ')})`)
  }
  for (const w of WORKLOADS) {
    const c = r.checks[w]
    if (c.failedButPresent > 0)
      out.push(`${w}: ${c.failedButPresent} writes the SDK reported as not applied (quorum not met, no primary took them) are present`)
  }
  if (r.checks.lww.unexpected > 0) out.push(`lww: ${r.checks.lww.unexpected} unexpected (${r.checks.lww.examples.join(', ')})`)
  if (!r.convergence.converged) out.push(`did not converge in ${r.convergence.ms} ms: ${r.convergence.lastDisagreement}`)
  if (r.divergentKeys > 0) out.push(`${r.divergentKeys} keys differ between replicas`)
  if (r.audit.reused.length > 0) out.push(`dots reused: ${r.audit.reused.slice(0, 5).join(', ')}`)
  if (r.audit.unknownActors.length > 0) out.push(`dots of unknown actors: ${r.audit.unknownActors.join(', ')}`)
  if (new Set(r.incarnations).size !== r.incarnations.length) out.push(`an incarnation repeated: ${r.incarnations.join(', ')}`)
  out.push(...r.clientFailures)
  out.push(...r.measured.violations)
  out.push(...sdkViolations(r.sdks, r.finalVersion, r.membership))
  // A non-Kvorum error out of the SDK is a programmer error: a bug whatever the fault.
  for (const w of WORKLOADS) for (const code of Object.keys(r.errors[w])) if (code.includes('UNEXPECTED')) out.push(`${w}: ${code}`)
  for (const w of ['set', 'register'] as const) if (r.checks[w].acknowledged === 0) out.push(`${w}: no operation was acknowledged`)
  return out
}
