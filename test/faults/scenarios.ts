import { BLACKHOLE, PASS, type ProxyMode, RESET } from '../support/fault-proxy.js'
import type { FaultHarness } from './harness.js'
import { MEMBERSHIP_SCENARIOS } from './membership-scenarios.js'
import { LONG_WIDE_SCENARIOS, WIDE_SCENARIOS } from './wide-scenarios.js'

/** What a scenario's fault script gets. */
export interface ScenarioContext {
  readonly h: FaultHarness
  /** The SDK deadline of the clients, ms: a pause must outlast it. */
  readonly timeoutMs: number
  /**
   * Run `cycle` once per window of the fault phase (the first 85% of the
   * workload; the rest runs healed). `at(f)` sleeps until fraction f of the
   * window, `when(f)` is that moment as a timestamp; `n` is the window's
   * number, to rotate victims.
   */
  cycles(cycle: (n: number, at: (fraction: number) => Promise<void>, when: (fraction: number) => number) => Promise<void>): Promise<void>
  /** A seeded random integer in [0, n). */
  random(n: number): number
}

/** A fault script run against the workload. */
export interface Scenario {
  readonly name: string
  readonly description: string
  /** Node processes at start, when the scenario needs other than the run's default. */
  readonly nodes?: number
  /** Every store's r, when the scenario needs other than 2 (n=3 and w=2 stay). */
  readonly readQuorum?: number
  /**
   * After the writers stopped and before the checks: figures the scenario
   * measures beyond the common ones, and what must hold of them (readable
   * failures, empty when all holds).
   */
  readonly measure?: (h: FaultHarness) => { readonly figures: Record<string, number>; readonly violations: readonly string[] }
  /**
   * A membership change: one more client runs, whose SDK the script holds
   * idle across the change (`h.holdClient(h.idleClient)`) and releases after
   * it, still holding the old definition; every SDK must end on the new one.
   */
  readonly idleClient?: boolean
  /** The shortest workload the script fits in, ms (a membership change takes its drains): a shorter run is lengthened. */
  readonly minWorkloadMs?: number
  run(ctx: ScenarioContext): Promise<void>
}

/** A node to hit in window n: rotates through the nodes, starting with the last. */
function victim(h: FaultHarness, n: number): string {
  const ids = h.nodeIds
  return ids[(ids.length - 1 + n) % ids.length] as string
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * Stop a node, copy its data, restart it and let it take writes; then kill it
 * and put the copy back once the copy is `age(grace)` ms old. A copy younger
 * than the tombstone grace is safe: no tombstone written after it can have been
 * reaped yet. An older one is not (Cassandra's gc_grace rule): a value deleted
 * after the copy, whose tombstone was reaped everywhere, comes back with it.
 */
function restoreScenario(name: string, than: 'younger' | 'older', age: (graceMs: number) => number): Scenario {
  return {
    name,
    description: `a node stopped and its data copied; it rejoins and takes writes; then it is killed and the copy, ${than} than the tombstone grace, put back`,
    async run({ h, cycles }) {
      await cycles(async (n, at) => {
        const id = victim(h, n)
        await at(0.1)
        await h.stop(id)
        const copy = h.snapshot(id)
        const copiedAt = Date.now()
        await h.start(id)
        // It must take writes the copy lacks, however slowly it started on a busy machine.
        await Promise.all([sleep(copiedAt + age(h.tombstoneGraceMs) - Date.now()), sleep(1000)])
        await h.kill(id)
        h.restore(id, copy)
        h.log(`the copy is ${Date.now() - copiedAt} ms old; the tombstone grace is ${h.tombstoneGraceMs} ms`)
        await h.start(id)
      })
    },
  }
}

/**
 * Scenarios run only on request (`--scenario`): they show a documented limit
 * and break an invariant by design.
 */
export const DEMONSTRATIONS: readonly Scenario[] = [restoreScenario('restore-stale-copy', 'older', (grace) => grace + 8000)]

/** Scenarios too long for `npm test`: the long run includes them, `--scenario` picks them. */
export const LONG_SCENARIOS: readonly Scenario[] = [...LONG_WIDE_SCENARIOS]

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'kill-restart',
    description: 'one node SIGKILLed mid-write, restarted on the same port a while later',
    async run({ h, cycles }) {
      await cycles(async (n, at) => {
        const id = victim(h, n)
        await at(0.2)
        await h.kill(id)
        await at(0.65)
        await h.start(id)
      })
    },
  },
  {
    name: 'minority-cut',
    description:
      'one node blackholed for two of three writers (the third still reaches it), then the third also loses another node: each side writes where the other cannot',
    async run({ h, cycles }) {
      const clients = Array.from({ length: h.clientCount }, (_, c) => c)
      const majority = clients.slice(0, Math.max(1, clients.length - 1))
      const rest = clients.slice(majority.length)
      await cycles(async (n, at) => {
        const cut = victim(h, n)
        const other = victim(h, n + 1)
        await at(0.15)
        h.cut(cut, majority)
        await at(0.45)
        if (rest.length > 0) h.cut(other, rest)
        await at(0.8)
        h.healNetwork()
      })
    },
  },
  {
    name: 'pause',
    description: "one node SIGSTOPped for longer than the clients' deadline, then SIGCONTed: its late replies arrive after the SDK gave up",
    async run({ h, cycles, timeoutMs }) {
      await cycles(async (n, at) => {
        const id = victim(h, n + 1)
        await at(0.15)
        h.pause(id)
        await sleep(Math.round(timeoutMs * 2.5))
        h.resume(id)
        await at(1)
      })
    },
  },
  restoreScenario('restore-old-copy', 'younger', (grace) => grace - 1500),
  {
    name: 'wipe-repair',
    description: 'a node SIGKILLed, its data directory deleted, restarted empty; a repair pass runs while the writers go on',
    async run({ h, cycles }) {
      await cycles(async (n, at) => {
        const id = victim(h, n)
        await at(0.2)
        await h.kill(id)
        await h.start(id, { wipe: true })
        await at(0.45)
        const report = await h.operator.repair()
        h.log(`repair during writes: ${report.keysRepaired} keys repaired in ${report.durationMs} ms`)
      })
    },
  },
  {
    name: 'flaky-links',
    description:
      'client-to-node links delayed (20-300 ms), reset, or blackholed, a new one every 150-500 ms; at most two are bad at once, the oldest heals first',
    async run({ h, cycles, random }) {
      await cycles(async (_n, _at, when) => {
        const end = when(0.9)
        const bad: { client: number; node: string }[] = []
        for (let i = 0; i < 1000 && Date.now() < end; i++) {
          const link = { client: random(h.clientCount), node: h.nodeIds[random(h.nodeIds.length)] as string }
          const modes: ProxyMode[] = [{ kind: 'delay', ms: 20 + random(280) }, RESET, BLACKHOLE]
          h.cut(link.node, [link.client], modes[random(modes.length)] as ProxyMode)
          bad.push(link)
          const healed = bad.length > 2 ? bad.shift() : undefined
          if (healed && !bad.some((b) => b.client === healed.client && b.node === healed.node)) h.cut(healed.node, [healed.client], PASS)
          await sleep(150 + random(350))
        }
        h.healNetwork()
      })
    },
  },
  ...MEMBERSHIP_SCENARIOS,
  ...WIDE_SCENARIOS,
]
