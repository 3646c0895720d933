import type { Workload } from './protocol.js'
import type { ScenarioResult } from './run-scenario.js'
import { sdkNotes } from './sdks.js'

const LABEL: Record<Workload, string> = {
  set: 'set-add, `siblings` + OR-set',
  lww: 'set-add, `lww` (control)',
  register: 'delete races, `siblings`',
}

function pct(part: number, whole: number): string {
  return whole === 0 ? '0%' : `${((100 * part) / whole).toFixed(1)}%`
}

/** A markdown table of one scenario's result: one row per workload. */
export function scenarioTable(r: ScenarioResult, command: string): string {
  const head = '| workload | attempted | acknowledged | lost | unexpected | recovered | resurrected | converged in | command |'
  const rule = '|---|---:|---:|---:|---:|---:|---:|---:|---|'
  const rows = (['set', 'lww', 'register'] as const).map((w) => {
    const c = r.checks[w]
    const lost = w === 'lww' ? `${c.lost} (${pct(c.lost, c.acknowledged)})` : String(c.lost)
    const converged = r.convergence.converged ? `${(r.convergence.ms / 1000).toFixed(1)} s` : 'no'
    return `| ${LABEL[w]} | ${c.attempted} | ${c.acknowledged} | ${lost} | ${c.unexpected} | ${c.recovered} | ${c.resurrected} | ${converged} | \`${command}\` |`
  })
  return [head, rule, ...rows].join('\n')
}

/** A few lines on what else the run saw: faults, errors, repairs, audit. */
export function scenarioNotes(r: ScenarioResult): string {
  const c = r.convergence
  const lines = [
    `- workload ${(r.durationMs / 1000).toFixed(0)} s, seed ${r.seed}; repair beside the writers: ${r.background.passes} passes, ${r.background.keysRepaired} keys repaired, ${r.background.tombstonesReaped} tombstones reaped; convergence: ${c.rounds} handoff+repair rounds, ${c.hintsDelivered} hints delivered, ${c.keysRepaired} keys repaired, ${c.tombstonesReaped} tombstones reaped`,
    `- dot audit: ${r.audit.versions} stored versions scanned, ${r.audit.reused.length} dots reused, ${r.audit.unknownActors.length} unknown actors; incarnations ${r.incarnations.length}, all distinct: ${new Set(r.incarnations).size === r.incarnations.length}`,
    `- delete races: ${r.checks.register.missedByDelete} acknowledged values a later delete's read did not see`,
  ]
  for (const w of ['set', 'lww', 'register'] as const) {
    const errors = Object.entries(r.errors[w])
      .sort((a, b) => b[1] - a[1])
      .map(([code, n]) => `${code} ×${n}`)
    if (errors.length > 0) lines.push(`- ${w} not acknowledged: ${errors.join(', ')}`)
  }
  const figures = Object.entries(r.measured.figures)
  if (figures.length > 0) lines.push(`- measured: ${figures.map(([name, n]) => `${name} ${n}`).join(', ')}`)
  lines.push(sdkNotes(r.sdks))
  lines.push(`- timeline: ${timeline(r.faults).join('; ')}`)
  return lines.join('\n')
}

/** Lines a short timeline keeps however long it is: what the membership drivers did, and the faults around them. */
const KEY_EVENT = /rebalance|driver|SIGKILL|gone for good|held idle|released/

/** The timeline, shortened past 12 lines to its first and last few and every key event between. */
function timeline(faults: readonly string[]): string[] {
  if (faults.length <= 12) return [...faults]
  const middle = faults.slice(4, -4)
  const kept = middle.filter((f) => KEY_EVENT.test(f))
  return [...faults.slice(0, 4), ...kept, `... ${middle.length - kept.length} more ...`, ...faults.slice(-4)]
}
