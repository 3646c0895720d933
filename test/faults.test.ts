import { afterAll, describe, expect, it } from 'vitest'
import { FaultHarness } from './faults/harness.js'
import { scenarioNotes, scenarioTable } from './faults/report.js'
import { runScenario, violations } from './faults/run-scenario.js'
import { SCENARIOS } from './faults/scenarios.js'

/**
 * The bounded fault suite over real node processes: every scenario with a
 * few seconds of workload (the whole file stays well under 3 minutes on a
 * 2-core machine). `npm run test:faults -- --duration 10m` runs it longer.
 */
const WORKLOAD_MS = 6000
/**
 * A membership change installs five versions, each followed by a drain longer
 * than the clients' 2 s deadline: the writers run long enough to see it all.
 */
const WORKLOAD_MS_OF: Record<string, number> = { 'grow-killed-driver': 14_000, 'shrink-under-load': 14_000 }
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
    /rebalance --drain-ms \d+ --grace-ms \d+ exited 0/,
    /operator holds cluster version \d+: n1, n2, n3, n4$/,
  ],
  'shrink-under-load': [/rebalance --remove n4 .* exited 0/, /operator holds cluster version \d+: n1, n2, n3$/],
}

afterAll(() => FaultHarness.closeAll())

describe('fault suite over real node processes (bounded)', () => {
  for (const [i, scenario] of SCENARIOS.entries()) {
    it(`${scenario.name}: nothing acknowledged lost, nothing unexpected, no deleted value back, replicas converge`, async () => {
      const result = await runScenario(scenario, { durationMs: WORKLOAD_MS_OF[scenario.name] ?? WORKLOAD_MS, seed: SEED + i, convergeBudgetMs: 20_000 })
      // The lww control's loss is measured and shown, not judged.
      console.log(
        `${scenario.name}\n${scenarioTable(result, `KVORUM_FAULT_SEED=${SEED} npx vitest run --config test/vitest.config.ts test/faults.test.ts`)}\n${scenarioNotes(result)}`,
      )
      expect(violations(result), result.evidence.join('\n')).toEqual([])
      for (const pattern of EXPECTED_FAULTS[scenario.name] ?? [])
        expect(
          result.faults.some((f) => pattern.test(f)),
          `${pattern} in ${result.faults.join('; ')}`,
        ).toBe(true)
      if (scenario.name === 'restore-old-copy') {
        // Three first starts, the restart after the copy, the start on the old copy: five incarnations, none shared.
        expect(new Set(result.incarnations).size).toBe(5)
      }
    }, 90_000)
  }
})
