import {
  type ClusterDef,
  type MembershipPlan,
  InvalidInputError,
  KvorumError,
  NodeUnavailableError,
  Placement,
  UnauthorizedError,
  UnsignedDefinitionError,
  abortMove,
  advance,
  sameDefinition,
  unionOfStores,
  validateCluster,
} from '@kvorum/core'
import { AntiEntropy, type RepairReport } from './anti-entropy.js'
import { checkAborted, pause } from './call.js'
import { HandoffWorker } from './handoff.js'
import { type RebalanceOptions, type RebalanceProgress, type Settings, settingsOf } from './rebalance-options.js'
import type { Runtime } from './runtime.js'

/** Most definitions one rebalance call installs (5 per step, up to Q steps): a bound, not a target. */
const MAX_VERSIONS = 5 * 65_536
/** Pause before a copy pass runs again after one that could not reach every replica, ms. */
const COPY_RETRY_MS = 1000
/** Pause between checks while waiting for nodes to install a version, ms. */
const BARRIER_POLL_MS = 100

/**
 * Drives a membership change (MEMBERSHIP.md) stage by stage. Every action
 * is idempotent and the plan lives in the definition, so a driver killed at
 * any point is resumed by running it again: each round first makes sure the
 * version the cluster is at has reached every node, then does that stage's
 * work (the copy, the grace period) and installs the next version.
 */
export class Rebalancer {
  private readonly s: Settings
  private readonly started: number
  private copied = { keys: 0, bytes: 0 }
  /** The copy pass in progress: partitions done of total, and when the step's copy began (monotonic ms; null: none). */
  private pass: { done: number; total: number; startedMs: number | null; limit: number } = { done: 0, total: 0, startedMs: null, limit: 0 }

  constructor(
    private readonly rt: Runtime,
    private readonly options: RebalanceOptions = {},
  ) {
    this.s = settingsOf(rt, options)
    this.started = rt.time.monotonicMs()
  }

  /** Run `plan` to its end (or resume it); returns the final definition. */
  async run(plan: MembershipPlan): Promise<ClusterDef> {
    for (let i = 0; i < MAX_VERSIONS; i++) {
      checkAborted(this.options.signal, 'rebalance')
      await this.rt.view.refresh()
      const def = this.rt.view.cluster
      if (def.move && def.move.planId !== plan.planId) {
        throw new InvalidInputError(`plan ${def.move.planId} is in progress, not ${plan.planId}: resume it (kvorum cluster rebalance) or abort it first`)
      }
      await this.barrier(def)
      if (def.move?.stage === 'write-both') await this.copy(def)
      if (def.move?.stage === 'use-new') {
        this.report(def, 'grace', [])
        await pause(this.rt.time, this.s.cleanupGraceMs, this.options.signal, 'rebalance')
      }
      const next = advance(def, plan)
      if (next && def.move?.stage === 'cleanup') await this.drainLeavers(def, next)
      if (!next) {
        this.report(def, 'done', [])
        return def
      }
      checkAborted(this.options.signal, 'rebalance')
      await this.install(next, def)
      this.copied = { keys: 0, bytes: 0 }
      this.pass = { done: 0, total: 0, startedMs: null, limit: 0 }
    }
    throw new Error('assertion failed: a plan ends within its bound of versions')
  }

  /** End the move in progress before its switch: the old replicas serve again, joiners drop their copies. */
  async abort(): Promise<ClusterDef> {
    await this.rt.view.refresh()
    const def = this.rt.view.cluster
    // Abort only from a definition every live node holds: a node that is unreachable, or already
    // further on (the switch may be past), would make the abort a second lineage of versions.
    await this.barrier(def)
    checkAborted(this.options.signal, 'abortRebalance')
    const next = abortMove(def)
    await this.install(next, def)
    return next
  }

  /**
   * Install the definition `make` builds from the one every live node holds
   * (a change that moves nothing, such as a store's settings). Every node
   * must take it: a node that is down makes the change fail, and running it
   * again finishes it.
   */
  async change(make: (def: ClusterDef) => ClusterDef): Promise<ClusterDef> {
    await this.rt.view.refresh()
    const def = this.rt.view.cluster
    // Two store changes that raced leave nodes with different definitions of one version: the
    // next is built on the union of their stores, which every one of them accepts.
    const split = await this.storeSplit(def)
    if (!split) await this.barrier(def)
    checkAborted(this.options.signal, 'the store change')
    const base = split ?? def
    let next = make(base)
    if (next === base && !split) return def
    if (next === base) next = validateCluster({ ...base, version: base.version + 1 })
    await this.barrier(next, def)
    await this.rt.view.refresh()
    return next
  }

  /** Push `next` to every node of `prev` and `next` and wait until each holds it; then let older operations drain. */
  private async install(next: ClusterDef, prev: ClusterDef): Promise<void> {
    await this.barrier(next, prev)
    await this.rt.view.refresh()
    this.report(next, 'drain', [])
    await pause(this.rt.time, this.s.drainMs, this.options.signal, 'rebalance')
  }

  /**
   * Until every live node of the definition (and of the one before) holds
   * `def`'s version or a newer one: push it to those that lag, and wait.
   */
  private async barrier(def: ClusterDef, prev?: ClusterDef): Promise<void> {
    const nodes = new Map([...(prev?.nodes ?? []), ...def.nodes].filter((n) => !this.s.dead.has(n.id)).map((n) => [n.id, n]))
    const until = this.rt.time.monotonicMs() + this.s.barrierTimeoutMs
    for (;;) {
      const lagging: string[] = []
      const conflicts: string[] = []
      await Promise.all(
        [...nodes.values()].map(async (node) => {
          const client = this.rt.view.transport.node(node)
          const t = { timeoutMs: this.rt.settings.requestTimeoutMs }
          let held: ClusterDef | null
          try {
            held = await client.getCluster(t)
          } catch (e) {
            lagging.push(`${node.id} (${(e as Error).message})`)
            return
          }
          // The version alone does not say which definition a node holds: two drivers (or a
          // rebalance and an abort) could each have written a different one under it.
          if (held && held.version === def.version && sameDefinition(held, def)) return
          if (held && held.version >= def.version)
            conflicts.push(`${node.id} holds ${held.version === def.version ? 'another' : 'a newer'} cluster version ${held.version}`)
          else {
            try {
              await client.putCluster(t, def)
            } catch (e) {
              // A refused credential stays refused: waiting out the barrier would only hide why.
              if (e instanceof UnsignedDefinitionError || e instanceof UnauthorizedError) throw e
              lagging.push(`${node.id} (${(e as Error).message})`)
            }
          }
        }),
      )
      if (conflicts.length > 0) {
        throw new KvorumError(
          'KV_CLUSTER_VERSION_CONFLICT',
          `another driver moved the cluster on (${conflicts.join(', ')}): stop it, or run the command again to resume from where the cluster is`,
        )
      }
      if (lagging.length === 0) return
      this.report(def, 'install', lagging)
      if (this.rt.time.monotonicMs() >= until) {
        throw new NodeUnavailableError(
          lagging.join(', '),
          `has not installed cluster version ${def.version}: start it and run the command again, or remove it with --dead (a membership plan in progress is kept in the definition)`,
        )
      }
      await pause(this.rt.time, BARRIER_POLL_MS, this.options.signal, 'rebalance')
    }
  }

  /**
   * The copy (stage S2): repair the moving partitions across old and new
   * replicas until a pass started after the barrier finds nothing to copy,
   * and deliver the hints kept for the nodes that leave.
   */
  private async copy(def: ClusterDef): Promise<void> {
    const partitions = movingPartitions(def)
    const leavers = leaversOf(def)
    let why = ''
    let waitingFor: string[] = []
    this.pass = { done: 0, total: partitions.length, startedMs: this.rt.time.monotonicMs(), limit: this.s.maxKeysPerSecond }
    // A pass that could not reach every replica is run again, after a pause, until both the passes
    // and the time of a barrier are used up: a node that restarts within that time is waited for.
    const until = this.rt.time.monotonicMs() + this.s.barrierTimeoutMs
    for (let pass = 0; pass < this.s.maxCopyPasses || this.rt.time.monotonicMs() < until; pass++) {
      if (pass > 0) {
        waitingFor = await this.unanswering(def)
        this.report(def, 'copy', waitingFor)
        await pause(this.rt.time, COPY_RETRY_MS, this.options.signal, 'rebalance')
      }
      let report: RepairReport
      try {
        report = await new AntiEntropy(this.rt).repair({
          partitions,
          reapTombstones: false,
          requireReplicasExcept: this.s.dead,
          maxKeysPerSecond: this.s.maxKeysPerSecond,
          signal: this.options.signal,
          onProgress: (r) => {
            this.pass = { ...this.pass, done: r.partitionsDone, total: r.partitionsTotal, limit: r.keysPerSecondLimit }
            this.report(def, 'copy', waitingFor, this.copied.keys + r.keysRepaired, this.copied.bytes + r.bytesExchanged)
          },
        })
      } catch (e) {
        checkAborted(this.options.signal, 'rebalance')
        why = (e as Error).message
        continue
      }
      this.copied = { keys: this.copied.keys + report.keysRepaired, bytes: this.copied.bytes + report.bytesExchanged }
      const backlog = await this.deliverHints(leavers)
      this.report(def, 'copy', [], this.copied.keys, this.copied.bytes, backlog)
      // One whole pass started after the barrier (and the drain) copied everything the old
      // replicas held then; every write since reaches a quorum of the new replicas by itself.
      // Hints for leaving nodes are delivered while they are still here, best effort: an
      // acknowledged write is always in its coordinator's rows, which the pass copied, and hints
      // whose target has left are merged into the current replicas by the handoff worker.
      if (report.partitionsSkipped === 0 && report.replicaWriteFailures === 0 && report.keysUnrepaired === 0) return
      why = `${report.partitionsSkipped} partitions not compared on every replica, ${report.replicaWriteFailures} repair writes refused, ${report.keysUnrepaired} keys not fetched, ${backlog} hints for leaving nodes undelivered`
    }
    const missing = waitingFor.length > 0 ? `; not answering: ${waitingFor.join(', ')}` : ''
    throw new KvorumError(
      'KV_NODE_UNAVAILABLE',
      `the copy of step ${def.move?.step} did not finish within ${Math.round(this.s.barrierTimeoutMs / 1000)} s (${why}${missing}): start the nodes that are down and run the command again to resume, or remove a node that is gone with --dead`,
    )
  }

  /** The union of the definitions the live nodes hold at `def`'s version, when they differ only in stores; else null. */
  private async storeSplit(def: ClusterDef): Promise<ClusterDef | null> {
    const t = { timeoutMs: this.rt.settings.requestTimeoutMs }
    const held = await Promise.all(
      def.nodes
        .filter((n) => !this.s.dead.has(n.id))
        .map((n) =>
          this.rt.view.transport
            .node(n)
            .getCluster(t)
            .catch(() => undefined),
        ),
    )
    // Healed only with every live node's answer: one that did not answer may hold yet another
    // store, which a union without it would leave it refusing for good.
    if (held.some((d) => d === undefined)) return null
    const top = held.filter((d): d is ClusterDef => d !== null && d !== undefined && d.version === def.version)
    const distinct = [...new Map(top.map((d) => [JSON.stringify(d), d])).values()]
    return distinct.length > 1 ? unionOfStores(distinct) : null
  }

  /** The live nodes of `def` that do not answer /health now, with why. */
  private async unanswering(def: ClusterDef): Promise<string[]> {
    const t = { timeoutMs: this.rt.settings.requestTimeoutMs }
    const out: string[] = []
    await Promise.all(
      def.nodes
        .filter((n) => !this.s.dead.has(n.id))
        .map((n) =>
          this.rt.view.transport
            .node(n)
            .health(t)
            .catch((e: Error) => out.push(`${n.id} (${e.message})`)),
        ),
    )
    return out.sort()
  }

  /**
   * Before nodes leave the definition: the hints they hold for others are
   * delivered (or re-targeted) first, so none is left behind with them.
   */
  private async drainLeavers(def: ClusterDef, next: ClusterDef): Promise<void> {
    const leaving = def.nodes.filter((n) => !next.nodes.some((m) => m.id === n.id) && !this.s.dead.has(n.id))
    if (leaving.length === 0) return
    const t = { timeoutMs: this.rt.settings.requestTimeoutMs }
    for (let pass = 0; pass < this.s.maxCopyPasses; pass++) {
      await new HandoffWorker(this.rt).sweep().catch(() => undefined)
      const held = await Promise.all(
        leaving.map((n) =>
          this.rt.view.transport
            .node(n)
            .hintTargets(t)
            .then(
              (ts) => ts.reduce((k, x) => k + x.count, 0),
              () => 1,
            ),
        ),
      )
      if (held.every((k) => k === 0)) return
      this.report(
        def,
        'copy',
        leaving.map((n, i) => `${n.id} (${held[i]} hints held)`),
      )
      await pause(this.rt.time, this.s.drainMs, this.options.signal, 'rebalance')
    }
    throw new KvorumError(
      'KV_NODE_UNAVAILABLE',
      `${leaving.map((n) => n.id).join(', ')} still hold hints for other nodes: bring those nodes up, then run the command again`,
    )
  }

  /** Deliver hints kept for the leaving nodes; the backlog left for them. */
  private async deliverHints(leavers: ReadonlySet<string>): Promise<number> {
    if (leavers.size === 0) return 0
    await new HandoffWorker(this.rt).sweep().catch(() => undefined)
    let backlog = 0
    for (const node of this.rt.view.cluster.nodes) {
      if (this.s.dead.has(node.id)) continue
      try {
        for (const t of await this.rt.view.nodeClient(node.id).hintTargets({ timeoutMs: this.rt.settings.requestTimeoutMs })) {
          if (leavers.has(t.target) && !this.s.dead.has(t.target)) backlog += t.count
        }
      } catch {
        backlog += 1
      }
    }
    return backlog
  }

  private report(
    def: ClusterDef,
    phase: RebalanceProgress['phase'],
    waitingFor: readonly string[],
    keys = this.copied.keys,
    bytes = this.copied.bytes,
    hintBacklog = 0,
  ): void {
    const move = def.move
    this.options.onProgress?.({
      planId: move?.planId ?? def.abortedPlan ?? '',
      version: def.version,
      step: move?.step ?? 0,
      steps: move?.steps ?? 0,
      stage: phase === 'done' ? 'done' : (move?.stage ?? 'done'),
      phase,
      waitingFor,
      keysCopied: keys,
      bytesCopied: bytes,
      hintBacklog,
      partitionsCopied: this.pass.done,
      partitionsToCopy: this.pass.total,
      copyElapsedMs: this.pass.startedMs !== null ? this.rt.time.monotonicMs() - this.pass.startedMs : 0,
      copyRateLimit: this.pass.limit,
      elapsedMs: this.rt.time.monotonicMs() - this.started,
    })
  }
}

/** Partitions whose replica sets differ between the old and the new assignment of the move (any store). */
export function movingPartitions(def: ClusterDef): number[] {
  const placement = new Placement(def)
  const out: number[] = []
  for (let q = 0; q < def.partitions; q++) if (def.stores.some((s) => placement.moving(q, s))) out.push(q)
  return out
}

/** Nodes that are an old replica but not a new one of some moving partition. */
function leaversOf(def: ClusterDef): Set<string> {
  const placement = new Placement(def)
  const out = new Set<string>()
  for (const q of movingPartitions(def)) {
    for (const s of def.stores) {
      // In write-both the sets are [O, N]; N has the store's new n when the plan changes it.
      const [old, next] = placement.writeSets(q, s)
      if (next) for (const id of old ?? []) if (!next.includes(id)) out.add(id)
    }
  }
  return out
}
