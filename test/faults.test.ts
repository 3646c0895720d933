import { afterAll, describe, expect, it } from 'vitest'
import { FaultHarness } from './faults/harness.js'
import { scenarioNotes, scenarioTable } from './faults/report.js'
import { runScenario, violations } from './faults/run-scenario.js'
import { SCENARIOS, type Scenario } from './faults/scenarios.js'

/**
 * The bounded fault suite over real node processes: every scenario with a
 * few seconds of workload, or the least its script fits in (a membership
 * change takes its drains). A scenario that needs more than MAX_WORKLOAD_MS
 * runs only in `npm run test:faults -- --scenario NAME`.
 */
const WORKLOAD_MS = 6000
/** Longest workload a scenario may need to be part of `npm test`, ms: about a minute per scenario with setup and checks. */
const MAX_WORKLOAD_MS = 35_000
/** Test time beyond the workload, ms: setup, checks, and a membership change the shared CPU makes twice as slow (the writers wait for it). */
const TEST_MARGIN_MS = 150_000
const SEED = Number(process.env.KVORUM_FAULT_SEED ?? 1)

/** What each script must have done, so a scenario that silently skipped its fault fails. */
const EXPECTED_FAULTS: Record<string, RegExp[]> = {
  'kill-restart': [/SIGKILL n\d/, /started n\d as incarnation/],
  'minority-cut': [/blackhole n\d for clients 0,1/, /network healed/],
  pause: [/SIGSTOP n\d/, /SIGCONT n\d/],
  'restore-old-copy': [/copied the data of n\d/, /restored n\d from its old copy/],
  'wipe-repair': [/started n\d \(wiped\)/, /repair during writes/],
  'flaky-links': [/(delay|reset|blackhole) n\d for clients \d/, /network healed/],
  'grow-killed-driver': [
    /started n4 outside the cluster/,
    /SIGKILL the rebalance driver after/,
    /rebalance --drain-ms \d+ --grace-ms \d+ exited 0 \(resuming plan p\S+ at step 1 of 1 /,
    /operator holds cluster version \d+: n1, n2, n3, n4$/,
  ],
  'shrink-under-load': [/rebalance --remove n4 .* exited 0/, /operator holds cluster version \d+: n1, n2, n3$/],
  'replace-killed-node': [
    /SIGKILL n3/,
    /n3 is gone for good/,
    /rebalance --replace n3=http:\S+ --dead --entries-per-step 32 .* exited 0/,
    /operator holds cluster version \d+: n1, n2, n4$/,
  ],
  'node-killed-during-copy': [
    /driver frozen at its first copy line while n\d was SIGKILLed/,
    /started n\d as incarnation/,
    /(the driver waited for n\d and ended the move|the driver exited [1-9]\d* (during|after) n\d's outage: kvorum: KV_)/,
    /operator holds cluster version \d+: n1, n2, n3, n4$/,
  ],
  'two-down': [
    /(n\d) and (n\d) are primaries together of the busiest keys/,
    /SIGKILL n\d/,
    /(n\d) and (n\d) were down together for \d+ ms/,
    /started n\d as incarnation/,
  ],
}
/** Every membership scenario holds its idle client (the fourth) across the change, and releases it. */
const IDLE_CLIENT_FAULTS = [/client 3 \(PID \d+\) held idle at cluster version 1$/, /client 3 released/]

/** The workload a scenario gets here, ms. */
function workloadOf(scenario: Scenario): number {
  return Math.max(WORKLOAD_MS, scenario.minWorkloadMs ?? 0)
}

afterAll(() => FaultHarness.closeAll())

describe('fault suite over real node processes (bounded)', () => {
  const bounded = SCENARIOS.filter((s) => workloadOf(s) <= MAX_WORKLOAD_MS)
  it('runs every scenario that fits its bound, each with the faults it must show', () => {
    expect(bounded.map((s) => s.name).sort()).toEqual(Object.keys(EXPECTED_FAULTS).sort())
  })
  for (const [i, scenario] of bounded.entries()) {
    it(
      `${scenario.name}: nothing acknowledged lost, nothing unexpected, no deleted value back, replicas converge`,
      async () => {
        const result = await runScenario(scenario, { durationMs: workloadOf(scenario), seed: SEED + i, convergeBudgetMs: 20_000 })
        // The lww control's loss is measured and shown, not judged.
        console.log(
          `${scenario.name}\n${scenarioTable(result, `KVORUM_FAULT_SEED=${SEED} npx vitest run --config test/vitest.config.ts test/faults.test.ts`)}\n${scenarioNotes(result)}`,
        )
        expect(violations(result), result.evidence.join('\n')).toEqual([])
        for (const pattern of [...(EXPECTED_FAULTS[scenario.name] ?? []), ...(scenario.idleClient ? IDLE_CLIENT_FAULTS : [])])
          expect(
            result.faults.some((f) => pattern.test(f)),
            `${pattern} in ${result.faults.join('; ')}`,
          ).toBe(true)
        if (scenario.name === 'restore-old-copy') {
          // Three first starts, the restart after the copy, the start on the old copy: five incarnations, none shared.
          expect(new Set(result.incarnations).size).toBe(5)
        }
        if (scenario.name === 'two-down') {
          // Five nodes, two dead at once: writes went on, also to keys that had both among their primaries (through hints).
          expect(result.incarnations.length).toBe(7)
          expect(result.measured.figures.acknowledgedWhileTwoDown).toBeGreaterThan(0)
          expect(result.measured.figures.acknowledgedBothPrimariesDown).toBeGreaterThan(0)
        }
        if (scenario.idleClient) {
          // The SDK held idle across the change met the new layout with the definition from before, and ended on the new one.
          const idle = result.sdks.find((s) => s.idle)
          expect(idle?.releasedVersion).toBe(1)
          expect(idle?.endVersion).toBe(result.finalVersion)
          expect(idle?.acknowledgedAfterRelease).toBeGreaterThan(0)
          expect(idle?.lostAfterRelease).toBe(0)
        }
      },
      workloadOf(scenario) + TEST_MARGIN_MS,
    )
  }
})
