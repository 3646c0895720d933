import type { VirtualClock } from './clock.js'
import type { SimCluster } from './cluster.js'
import type { Network } from './network.js'
import type { Random } from '../support/random.js'

/** What the nemesis may do during the fault phase, and for how long. */
export interface NemesisPlan {
  /** Faults scheduled within the window. */
  readonly faults: number
  /** The window in which faults start, ms of virtual time from the start of the workload. */
  readonly windowMs: number
  /** Longest crash, pause or cut, ms. */
  readonly maxFaultMs: number
  readonly clients: readonly string[]
}

/**
 * Schedule crashes, pauses and asymmetric cuts at seeded times. A node has at
 * most one crash or pause at a time; cuts of one client are independent of
 * the node's own state. Each fault undoes itself after its duration, and
 * the heal step undoes whatever is left.
 */
export function scheduleFaults(plan: NemesisPlan, cluster: SimCluster, network: Network, rng: Random, clock: VirtualClock): void {
  const busy = new Map<string, [number, number][]>()
  const nodes = cluster.nodes.map((n) => n.id)
  for (let i = 0; i < plan.faults; i++) {
    const at = rng.range(0, plan.windowMs)
    const lengthMs = rng.range(50, plan.maxFaultMs)
    const kind = rng.pick(['crash', 'crash', 'pause', 'cut', 'cut', 'cut'] as const)
    if (kind === 'cut') {
      const client = rng.pick(plan.clients)
      const mode = rng.chance(0.5) ? 'blackhole' : 'refuse'
      // Cut a client from one node, or from a minority or majority of them.
      const victims = nodes.filter(() => rng.chance(0.4))
      if (victims.length === 0) victims.push(rng.pick(nodes))
      clock.setTimeout(() => {
        for (const n of victims) network.cut(client, n, mode)
      }, at)
      clock.setTimeout(() => {
        for (const n of victims) network.mend(client, n)
      }, at + lengthMs)
      continue
    }
    const node = rng.pick(nodes)
    const spans = busy.get(node) ?? []
    if (spans.some(([from, to]) => at <= to && at + lengthMs >= from)) continue
    busy.set(node, [...spans, [at, at + lengthMs]])
    if (kind === 'crash') {
      // Half the crashes hit between taking a write and committing it.
      const armed = rng.chance(0.5)
      clock.setTimeout(() => (armed ? cluster.armCrash(node) : cluster.crash(node)), at)
      clock.setTimeout(() => {
        cluster.disarm(node)
        cluster.restart(node)
      }, at + lengthMs)
    } else {
      clock.setTimeout(() => cluster.pause(node), at)
      clock.setTimeout(() => cluster.resume(node), at + lengthMs)
    }
  }
}
