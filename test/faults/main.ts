/**
 * The long fault run: `npm run test:faults -- --duration 10m`. Splits the
 * duration over the scenarios, prints one markdown table per scenario (the
 * rows of docs/reliability.md) and exits 1 if any invariant broke.
 *
 *   --duration D    total time, e.g. 10m, 90s (default 10m)
 *   --scenario S    only these scenarios, comma-separated (default all but the
 *                   demonstrations of known limits, e.g. restore-stale-copy)
 *   --nodes N       node processes, at least (default 3, or what a scenario
 *                   needs: the two-down ones run 5)
 *   --seed N        seed of the random choices (default: from the clock)
 *   --cycle D       one fault per window this long (default 20s)
 *   --json FILE     also write every result as JSON
 */
import { writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { FaultHarness } from './harness.js'
import { scenarioNotes, scenarioTable } from './report.js'
import { runScenario, violations } from './run-scenario.js'
import { DEMONSTRATIONS, LONG_SCENARIOS, SCENARIOS } from './scenarios.js'

/** Setup, stop, convergence and checks take about this long per scenario, ms. */
const OVERHEAD_MS = 12_000
const MIN_WORKLOAD_MS = 5000

function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim())
  if (!m) throw new Error(`not a duration: ${text} (try 90s or 10m)`)
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h']
  return Math.round(Number(m[1]) * unit)
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '10m' },
      scenario: { type: 'string' },
      seed: { type: 'string' },
      cycle: { type: 'string', default: '20s' },
      json: { type: 'string' },
      nodes: { type: 'string' },
    },
  })
  const names = values.scenario?.split(',').map((s) => s.trim()) ?? [...SCENARIOS, ...LONG_SCENARIOS].map((s) => s.name)
  const known = [...SCENARIOS, ...LONG_SCENARIOS, ...DEMONSTRATIONS]
  const chosen = names.map((n) => {
    const s = known.find((x) => x.name === n)
    if (!s) throw new Error(`unknown scenario ${n}; known: ${known.map((x) => x.name).join(', ')}`)
    return s
  })
  const total = parseDuration(values.duration)
  const seed = values.seed ? Number(values.seed) : Date.now() % 1_000_000
  const workloadMs = Math.max(MIN_WORKLOAD_MS, Math.floor(total / chosen.length) - OVERHEAD_MS)
  const cycleMs = parseDuration(values.cycle)
  const nodes = values.nodes === undefined ? undefined : Number(values.nodes)
  if (nodes !== undefined && !(Number.isInteger(nodes) && nodes >= 3 && nodes <= 9))
    throw new Error(`--nodes must be an integer from 3 to 9, not ${values.nodes}`)
  const command = `npm run test:faults -- --duration ${values.duration}${values.scenario ? ` --scenario ${values.scenario}` : ''}${nodes ? ` --nodes ${nodes}` : ''} --seed ${seed}`
  console.log(
    `# Kvorum fault suite: ${chosen.length} scenarios, ${(workloadMs / 1000).toFixed(0)} s of workload each (more where a scenario needs it), seed ${seed}\n`,
  )
  const results = []
  let failed = 0
  for (const [i, scenario] of chosen.entries()) {
    const result = await runScenario(scenario, {
      durationMs: Math.max(workloadMs, scenario.minWorkloadMs ?? 0),
      seed: seed + i,
      cycleMs,
      ...(nodes ? { nodes } : {}),
    })
    results.push(result)
    const broken = violations(result)
    failed += broken.length > 0 ? 1 : 0
    console.log(`## ${scenario.name}\n\n${scenario.description}.\n\n${scenarioTable(result, command)}\n\n${scenarioNotes(result)}`)
    if (broken.length > 0)
      console.log(`\n**VIOLATIONS:**\n${broken.map((b) => `- ${b}`).join('\n')}\n\n${result.evidence.join('\n')}\n\n${result.faults.join('\n')}`)
    console.log(`\n(${(result.wallMs / 1000).toFixed(0)} s wall)\n`)
  }
  if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 2))
  console.log(failed === 0 ? 'All invariants held.' : `${failed} scenario(s) broke an invariant.`)
  return failed === 0 ? 0 : 1
}

// Ctrl-C: stop every process this run started before leaving.
process.once('SIGINT', () => {
  void FaultHarness.closeAll().finally(() => process.exit(130))
})

main().then(
  (code) => process.exit(code),
  async (e: unknown) => {
    console.error((e as Error)?.stack ?? String(e))
    await FaultHarness.closeAll()
    process.exit(2)
  },
)
