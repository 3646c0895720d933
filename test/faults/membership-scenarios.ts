import type { CliProcess } from './cli.js'
import type { FaultHarness } from './harness.js'
import type { Scenario } from './scenarios.js'

/** Margin of the driver's drain over the clients' deadline, ms: an operation begun under the old version has ended by then. */
const DRAIN_MARGIN_MS = 500
/** Cleanup grace of the driver in the suite, ms: short, so the change ends while the writers run. */
const CLEANUP_GRACE_MS = 200
/** Assignment entries per step: Q=64 moves 16 entries going 3→4 or 4→3, so one step, and a bounded run sees the whole change. */
const ENTRIES_PER_STEP = 16
/** A replacement takes every entry of the dead node (about Q/3 = 22 of 64): one step. */
const REPLACE_ENTRIES_PER_STEP = 32
/** Entries per step of the multi-step scenario: 16 entries in steps of 6 is 3 steps. */
const SMALL_STEPS = 6
/** Longest a membership driver may take to reach a kill point, or to finish, ms (generous: the CPU is shared). */
const DRIVER_BUDGET_MS = 120_000
/** Longest the idle client may take to park its loops: one operation's deadline and more, ms. */
const HOLD_BUDGET_MS = 15_000
/** How long the node killed during the copy stays down, ms: longer than a restart, shorter than the barrier's 60 s. */
const OUTAGE_MS = 6000

/**
 * Where the first driver is SIGKILLed: once this many of its progress lines
 * matched. Each is a different place to resume from: mid-drain of the
 * write-both version (the resumed driver copies at once), after a copy pass,
 * mid-drain of read-new, mid-drain of use-new.
 */
const KILL_POINTS: readonly { what: string; pattern: RegExp; count: number }[] = [
  { what: 'its first drain (write-both installed)', pattern: /\[drain\]/, count: 1 },
  { what: 'its first copy pass', pattern: /\[copy\]/, count: 1 },
  { what: 'its second drain (read-new installed)', pattern: /\[drain\]/, count: 2 },
  { what: 'its third drain (use-new installed)', pattern: /\[drain\]/, count: 3 },
]

/** Kill points inside step `step` of a plan of `steps`: the places a resumed driver must pick a later step up from. */
function killPointsOf(step: number, steps: number): { what: string; pattern: RegExp; count: number }[] {
  const at = (stage: string, phase: string) => new RegExp(`^step ${step}/${steps} ${stage} \\[${phase}\\]`)
  return [
    { what: `step ${step}'s write-both drain`, pattern: at('write-both', 'drain'), count: 1 },
    { what: `step ${step}'s copy`, pattern: at('write-both', 'copy'), count: 1 },
    { what: `step ${step}'s read-new drain`, pattern: at('read-new', 'drain'), count: 1 },
    { what: `step ${step}'s cleanup drain`, pattern: at('cleanup', 'drain'), count: 1 },
  ]
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)))
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** The driver's waits: a drain longer than any client operation, a short cleanup grace. */
function driverFlags(timeoutMs: number): string[] {
  return ['--drain-ms', String(timeoutMs + DRAIN_MARGIN_MS), '--grace-ms', String(CLEANUP_GRACE_MS)]
}

/** Run `kvorum cluster rebalance <args>` to its end; throws unless it exits 0. */
async function rebalance(h: FaultHarness, args: readonly string[]): Promise<void> {
  await finish(h, h.cli(['cluster', 'rebalance', ...args]), args)
}

/** Wait for a started driver to exit; throws unless it exits 0. */
async function finish(h: FaultHarness, driver: CliProcess, args: readonly string[]): Promise<void> {
  const exit = await within(driver.exited, DRIVER_BUDGET_MS)
  if (exit === 'timeout' || exit.code !== 0) throw new Error(`kvorum cluster rebalance ${args.join(' ')} ended ${JSON.stringify(exit)}:\n${driver.output()}`)
  h.log(`kvorum cluster rebalance ${args.join(' ')} exited 0${resumedFrom(driver)}`)
}

/** Where a driver picked a plan up, when it resumed one: for the timeline. */
function resumedFrom(driver: CliProcess): string {
  const line = /^resuming plan .*$/m.exec(driver.output())?.[0]
  return line ? ` (${line})` : ''
}

/** SIGKILL a running driver once `point` is reached. */
async function killAt(h: FaultHarness, driver: CliProcess, point: { what: string; pattern: RegExp; count: number }): Promise<void> {
  if (!(await driver.waitFor(point.pattern, point.count, DRIVER_BUDGET_MS)))
    throw new Error(`the driver ended or stalled before ${point.what}:\n${driver.output()}`)
  await driver.kill()
  h.log(`SIGKILL the rebalance driver after ${point.what}${resumedFrom(driver)}`)
}

/** After a change: the definition the nodes hold must have exactly `ids`, with no move left. */
async function expectMembers(h: FaultHarness, ids: readonly string[]): Promise<void> {
  await h.refreshOperator()
  const def = h.operator.cluster
  const got = def.nodes.map((n) => n.id).sort()
  if (def.move || got.join(',') !== [...ids].sort().join(','))
    throw new Error(`after the change the cluster has ${got.join(', ')}${def.move ? ` and a move in ${def.move.stage}` : ''}; expected ${ids.join(', ')}`)
}

/**
 * Run `change` with the idle client parked: its SDK makes no request and
 * does not poll, so it is released still holding the definition from before
 * the change, as an application server that sat idle through it would.
 */
async function withIdleClient(h: FaultHarness, change: () => Promise<void>): Promise<void> {
  const idle = h.idleClient
  if (idle === undefined) throw new Error('assertion failed: a membership scenario runs an idle client')
  await h.holdClient(idle, HOLD_BUDGET_MS)
  await change()
  h.releaseClient(idle)
}

/** The id the next node gets: one past the nodes the cluster had at start. */
function nextId(h: FaultHarness): string {
  return `n${h.nodeIds.length + 1}`
}

/** A scenario that changes membership once, in its first window, with the idle client held across it. */
function membershipScenario(
  base: Omit<Scenario, 'run' | 'idleClient'>,
  change: (h: FaultHarness, ctx: { timeoutMs: number; random(n: number): number }) => Promise<void>,
): Scenario {
  return {
    ...base,
    idleClient: true,
    async run({ h, cycles, timeoutMs, random }) {
      await cycles(async (n, at) => {
        // The cluster changes once per run; later windows run the writers on the changed cluster.
        if (n > 0) return
        h.watchIncarnations()
        await at(0.02)
        await withIdleClient(h, () => change(h, { timeoutMs, random }))
      })
    },
  }
}

export const MEMBERSHIP_SCENARIOS: readonly Scenario[] = [
  membershipScenario(
    {
      name: 'grow-killed-driver',
      description:
        'a fourth node started and added with `kvorum cluster rebalance --add` while the writers run; the driver is SIGKILLed partway (a seeded choice of drain or copy) and `kvorum cluster rebalance` with no arguments resumes it to the end',
      minWorkloadMs: 14_000,
    },
    async (h, { timeoutMs, random }) => {
      const before = h.members.map((m) => m.id)
      const id = nextId(h)
      const url = await h.addNode(id)
      const first = h.cli(['cluster', 'rebalance', '--add', url, '--entries-per-step', String(ENTRIES_PER_STEP), ...driverFlags(timeoutMs)])
      await killAt(h, first, KILL_POINTS[random(KILL_POINTS.length)] as (typeof KILL_POINTS)[number])
      await rebalance(h, driverFlags(timeoutMs))
      await expectMembers(h, [...before, id])
    },
  ),
  membershipScenario(
    {
      name: 'shrink-under-load',
      description: 'four nodes; the fourth removed with `kvorum cluster rebalance --remove` while the writers run',
      nodes: 4,
      minWorkloadMs: 14_000,
    },
    async (h, { timeoutMs }) => {
      const before = h.members.map((m) => m.id)
      const leaver = before[before.length - 1] as string
      await rebalance(h, ['--remove', leaver, '--entries-per-step', String(ENTRIES_PER_STEP), ...driverFlags(timeoutMs)])
      await expectMembers(
        h,
        before.filter((id) => id !== leaver),
      )
    },
  ),
  membershipScenario(
    {
      name: 'replace-killed-node',
      description:
        'a node SIGKILLed under load, its disk lost for good; an empty node (new data directory, new port) takes its place with `kvorum cluster rebalance --replace ID=URL --dead` while the writers run',
      minWorkloadMs: 16_000,
    },
    async (h, { timeoutMs }) => {
      const before = h.members.map((m) => m.id)
      const dead = before[before.length - 1] as string
      await h.killForGood(dead)
      // The writers go on without it for a while: hints pile up for a node that will never return.
      await sleep(1500)
      const id = nextId(h)
      const url = await h.addNode(id)
      await rebalance(h, ['--replace', `${dead}=${url}`, '--dead', '--entries-per-step', String(REPLACE_ENTRIES_PER_STEP), ...driverFlags(timeoutMs)])
      await expectMembers(h, [...before.filter((x) => x !== dead), id])
    },
  ),
  membershipScenario(
    {
      name: 'node-killed-during-copy',
      description: `a fourth node added; the driver is frozen (SIGSTOP) at its first copy line, an old node SIGKILLed, the driver continued: it must not finish while the node is down, and either waits or exits non-zero with a one-line KV_ error; the node restarts after ${OUTAGE_MS / 1000} s and \`kvorum cluster rebalance\` (resumed if the driver had exited) ends the move`,
      minWorkloadMs: 30_000,
    },
    async (h, { timeoutMs, random }) => {
      const before = h.members.map((m) => m.id)
      const victim = before[random(before.length)] as string
      const id = nextId(h)
      const url = await h.addNode(id)
      const args = ['--add', url, '--entries-per-step', String(ENTRIES_PER_STEP), ...driverFlags(timeoutMs)]
      const driver = h.cli(['cluster', 'rebalance', ...args])
      if (!(await driver.waitFor(/\[copy\]/, 1, DRIVER_BUDGET_MS))) throw new Error(`the driver ended or stalled before its copy:\n${driver.output()}`)
      // Frozen mid-copy, so the node dies while the copy is under way, not after it.
      driver.pause()
      await h.kill(victim)
      driver.resume()
      h.log(`driver frozen at its first copy line while ${victim} was SIGKILLed, then continued`)
      const downAt = Date.now()
      const during = await within(driver.exited, OUTAGE_MS)
      // Down for the whole outage whatever the driver did: the writers meet the move with a replica missing.
      await sleep(downAt + OUTAGE_MS - Date.now())
      if (during !== 'timeout' && during.code === 0)
        throw new Error(`the driver finished the move while ${victim}, an old replica, was down:\n${driver.output()}`)
      const when = during === 'timeout' ? 'after' : 'during'
      if (during === 'timeout') h.log(`the driver was still running at the end of the ${OUTAGE_MS / 1000} s outage: ${lastLine(driver)}`)
      await h.start(victim)
      const exit = during === 'timeout' ? await within(driver.exited, DRIVER_BUDGET_MS) : during
      if (exit === 'timeout')
        throw new Error(`the driver neither finished nor gave up within ${DRIVER_BUDGET_MS} ms of ${victim}'s restart:\n${driver.output()}`)
      if (exit.code === 0) h.log(`the driver waited for ${victim} and ended the move after its restart`)
      else {
        // It gave up: right only as a clear, resumable failure, with the move kept in the definition.
        const said = lastLine(driver)
        if (!/^kvorum: KV_[A-Z_]+: .*(run the command again|start it)/.test(said))
          throw new Error(`the driver exited ${JSON.stringify(exit)} with no clear KV_ error telling how to resume:\n${driver.output()}`)
        h.log(`the driver exited ${exit.code} ${when} ${victim}'s outage: ${said}`)
        await rebalance(h, driverFlags(timeoutMs))
      }
      await expectMembers(h, [...before, id])
    },
  ),
  membershipScenario(
    {
      name: 'grow-multi-step-killed-driver',
      description: `a fourth node added in steps of ${SMALL_STEPS} assignment entries (3 steps); the driver is SIGKILLed in step 2, the resumed driver SIGKILLed again in step 3 (seeded points: a drain, the copy, read-new, cleanup), and the third run ends the move`,
      minWorkloadMs: 50_000,
    },
    async (h, { timeoutMs, random }) => {
      const before = h.members.map((m) => m.id)
      const id = nextId(h)
      const url = await h.addNode(id)
      const first = h.cli(['cluster', 'rebalance', '--add', url, '--entries-per-step', String(SMALL_STEPS), ...driverFlags(timeoutMs)])
      if (!(await first.waitFor(/step\(s\)/, 1, DRIVER_BUDGET_MS))) throw new Error(`the driver printed no plan:\n${first.output()}`)
      const steps = Number(/(\d+) step\(s\)/.exec(first.output())?.[1])
      if (steps < 3) throw new Error(`the plan has ${steps} steps; this scenario needs at least 3:\n${first.output()}`)
      const inStep2 = killPointsOf(2, steps)
      await killAt(h, first, inStep2[random(inStep2.length)] as (typeof inStep2)[number])
      const second = h.cli(['cluster', 'rebalance', ...driverFlags(timeoutMs)])
      const inLast = killPointsOf(steps, steps)
      await killAt(h, second, inLast[random(inLast.length)] as (typeof inLast)[number])
      if (!resumedFrom(second).includes(`at step 2 of ${steps}`)) throw new Error(`the second driver did not resume at step 2:\n${second.output()}`)
      const third = h.cli(['cluster', 'rebalance', ...driverFlags(timeoutMs)])
      await finish(h, third, driverFlags(timeoutMs))
      if (!resumedFrom(third).includes(`at step ${steps} of ${steps}`)) throw new Error(`the third driver did not resume at step ${steps}:\n${third.output()}`)
      await expectMembers(h, [...before, id])
    },
  ),
]

/** The last line a driver wrote. */
function lastLine(driver: CliProcess): string {
  return driver.output().trim().split('\n').at(-1) ?? ''
}
