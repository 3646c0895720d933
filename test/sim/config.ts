import type { StoreDef } from '@kvorum/core'
import type { FaultRates } from './network.js'
import type { Random } from '../support/random.js'

/**
 * A deliberate bug, to prove the checks catch what they claim to: an `lww`
 * store (concurrent adds lost), deletes written without the context they
 * read (their tombstones cover nothing), expiring overwrites written without
 * it (with the `clocks` option: they cover nothing either), or no handoff and
 * repair before the checks (replicas left apart); with the `imports` option,
 * an import that writes each exported value over what the replicas hold
 * instead of merging the sets (`overwrite-import`); or a network that
 * delivers coordinate batches twice, the copy late (`copy-coordinates`: one
 * write under two dots, which HTTP never does).
 */
export type Mutant = 'lww' | 'blind-delete' | 'blind-expire' | 'no-repair' | 'overwrite-import' | 'copy-coordinates'

/** Everything a seed decides before the run starts. */
export interface SeedConfig {
  readonly nodes: number
  readonly partitions: number
  readonly store: Partial<StoreDef> & { name: string; n: number }
  readonly clients: number
  readonly workersPerClient: number
  readonly opsPerWorker: number
  /** Pause before each operation, uniform in 0..thinkMaxMs. */
  readonly thinkMaxMs: number
  /**
   * Odds that a worker naps past the tombstone grace period before an
   * operation, so repairs during the run reap tombstones while writes, hints
   * and faults go on.
   */
  readonly napChance: number
  /** Keys that only get OR-set adds. */
  readonly cartKeys: readonly string[]
  /** Keys that get created, deleted and re-created. */
  readonly docKeys: readonly string[]
  readonly rates: FaultRates
  readonly faults: number
  readonly faultWindowMs: number
  readonly maxFaultMs: number
  /** Clients that run a background hint handoff worker during the faults. */
  readonly handoffClients: readonly boolean[]
  /** Let the tombstone grace period pass before the final repair, so it reaps. */
  readonly reapAtEnd: boolean
  readonly mutant: Mutant | null
}

/** SDK deadlines used by every simulated client, ms. */
export const CLIENT_TIMING = { timeoutMs: 1000, requestTimeoutMs: 300, probeIntervalMs: 100 } as const

/**
 * Longer than an operation's deadline plus a request timeout plus the
 * slowest message, so a message sent before a tombstone was written cannot
 * land after the tombstone is reaped (Cassandra's gc_grace rule).
 */
export const TOMBSTONE_GRACE_MS = 3000

const SPIKE_MAX_MS = 400

/**
 * Draw a seed's shape: a small cluster, a few clients, a short burst of
 * operations, and a fault mix. Kept small so a seed costs tens of ms and
 * thousands of seeds fit in a test run.
 */
export function planSeed(rng: Random, mutant: Mutant | null = null): SeedConfig {
  const nodes = rng.range(3, 5)
  const clients = rng.range(2, 4)
  const n = 3
  const w = rng.pick([1, 2, 2, 2, 3])
  const r = rng.pick([1, 2, 2, 3])
  const calm = rng.chance(0.1)
  const opsPerWorker = rng.range(4, 8)
  const thinkMaxMs = rng.pick([20, 100, 250])
  const napChance = rng.pick([0, 0, 0.1])
  return {
    nodes,
    partitions: 8,
    store: { name: 'sim', n, r, w, pr: 0, pw: rng.pick([0, 1, 1]), tombstoneGraceMs: TOMBSTONE_GRACE_MS, conflict: mutant === 'lww' ? 'lww' : 'siblings' },
    clients,
    workersPerClient: rng.range(1, 2),
    opsPerWorker,
    thinkMaxMs,
    napChance,
    cartKeys: Array.from({ length: rng.range(1, 3) }, (_, i) => `cart-${i}`),
    docKeys: Array.from({ length: rng.range(1, 3) }, (_, i) => `doc-${i}`),
    rates: calm
      ? { dropRequest: 0, dropResponse: 0, duplicate: 0, delayMaxMs: 5, spikeChance: 0, spikeMaxMs: 0 }
      : {
          dropRequest: rng.pick([0, 0.02, 0.05]),
          dropResponse: rng.pick([0, 0.02, 0.05]),
          duplicate: rng.pick([0, 0.02, 0.05]),
          delayMaxMs: rng.pick([1, 10, 40]),
          spikeChance: rng.pick([0, 0.01, 0.03]),
          spikeMaxMs: SPIKE_MAX_MS,
        },
    faults: calm ? 0 : rng.range(0, 5),
    // About as long as the workload, so faults land among the operations.
    faultWindowMs: opsPerWorker * (thinkMaxMs / 2 + 40 + napChance * (TOMBSTONE_GRACE_MS + 500)),
    maxFaultMs: rng.pick([300, 800, 1500]),
    handoffClients: Array.from({ length: clients }, () => rng.chance(0.3)),
    reapAtEnd: rng.chance(0.5),
    mutant,
  }
}
