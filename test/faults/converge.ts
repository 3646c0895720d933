import { HASH_BYTES, bytesEqual } from '@kvorum/core'
import { handoffWorker } from '@kvorum/client/testing'
import type { FaultHarness } from './harness.js'

/** How a run reached (or did not reach) agreement among replicas. */
export interface Convergence {
  readonly converged: boolean
  /** From the start of healing until every replica agreed and no hint was left, ms. */
  readonly ms: number
  /** Handoff-and-repair rounds it took. */
  readonly rounds: number
  readonly hintsDelivered: number
  readonly keysRepaired: number
  readonly tombstonesReaped: number
  /** Why the last round did not count as converged. */
  readonly lastDisagreement: string
}

const T = { timeoutMs: 5000 }

/** What still differs: partitions whose replicas' Merkle roots differ, or hints still kept. Empty when converged. */
async function disagreement(h: FaultHarness): Promise<string> {
  const kv = h.operator
  const out: string[] = []
  for (const node of h.members) {
    const targets = await h.cluster.transport.node(node).hintTargets(T)
    for (const t of targets) if (t.count > 0) out.push(`${node.id} keeps ${t.count} hints for ${t.target}`)
  }
  for (const store of kv.cluster.stores) {
    const roots = new Map<string, Uint8Array>()
    for (const node of h.members) roots.set(node.id, await h.cluster.transport.node(node).merkleRoots(T, store.name))
    for (let p = 0; p < kv.cluster.partitions; p++) {
      const [first, ...rest] = kv.ring.primaries(p, store.n).map((id) => (roots.get(id) as Uint8Array).subarray(p * HASH_BYTES, (p + 1) * HASH_BYTES))
      if (first && rest.some((r) => !bytesEqual(r, first))) out.push(`${store.name} partition ${p} differs`)
    }
  }
  return out.length > 5 ? `${out.slice(0, 5).join('; ')} (and ${out.length - 5} more)` : out.join('; ')
}

/**
 * After the faults are healed and the writers have stopped: deliver hints
 * (one handoff sweep) and run a Merkle repair pass, again until every
 * replica of every partition holds the same data and no hint is left.
 * Bounded by `budgetMs`.
 */
export async function converge(h: FaultHarness, budgetMs: number): Promise<Convergence> {
  const started = Date.now()
  let rounds = 0
  let hintsDelivered = 0
  let keysRepaired = 0
  let tombstonesReaped = 0
  let last = 'not checked'
  while (Date.now() - started < budgetMs && rounds < 1000) {
    rounds++
    try {
      hintsDelivered += (await handoffWorker(h.operator).sweep()).delivered
      const report = await h.operator.repair()
      keysRepaired += report.keysRepaired
      tombstonesReaped += report.tombstonesReaped
      last = await disagreement(h)
    } catch (e) {
      last = `round failed: ${(e as Error).message}`
    }
    if (last === '') return { converged: true, ms: Date.now() - started, rounds, hintsDelivered, keysRepaired, tombstonesReaped, lastDisagreement: '' }
    await new Promise((r) => setTimeout(r, 200))
  }
  return { converged: false, ms: Date.now() - started, rounds, hintsDelivered, keysRepaired, tombstonesReaped, lastDisagreement: last }
}

/** What the background repairer did during the workload. */
export interface DaemonReport {
  passes: number
  failedPasses: number
  keysRepaired: number
  tombstonesReaped: number
}

/**
 * Run a repair pass every `intervalMs` beside the writers, as `kvorum repair
 * --daemon` would, so repair and tombstone reaping race the faults too.
 * `stop()` waits for the pass under way; calling it again returns the same report.
 */
export function repairDaemon(h: FaultHarness, intervalMs: number): { stop(): Promise<DaemonReport> } {
  const report: DaemonReport = { passes: 0, failedPasses: 0, keysRepaired: 0, tombstonesReaped: 0 }
  let stopped = false
  let wake: (() => void) | undefined
  let timer: NodeJS.Timeout | undefined
  const loop = (async () => {
    for (let i = 0; i < 100_000 && !stopped; i++) {
      await new Promise<void>((r) => {
        wake = r
        timer = setTimeout(r, intervalMs)
      })
      if (stopped) break
      try {
        const pass = await h.operator.repair()
        report.passes++
        report.keysRepaired += pass.keysRepaired
        report.tombstonesReaped += pass.tombstonesReaped
      } catch {
        report.failedPasses++
      }
    }
  })()
  return {
    async stop() {
      stopped = true
      clearTimeout(timer)
      wake?.()
      await loop
      return { ...report }
    },
  }
}
