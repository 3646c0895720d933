import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type ClusterDef, type NodeDef, type StoreDef, type Time, initialAssignment, storeDef } from '@kvorum/core'
import { ReapWatch } from './reap-watch.js'
import { StorageEngine } from '@kvorum/storage'
import type { VirtualClock } from './clock.js'
import type { Random } from '../support/random.js'
import type { Trace } from './trace.js'

/** Where a node process is: serving, dead (until restarted), or stopped (SIGSTOP: requests wait). */
export type NodeStatus = 'up' | 'crashed' | 'paused'

interface NodeSlot {
  status: NodeStatus
  /** Bumped at every crash: requests and answers of an older epoch died with the process. */
  epoch: number
  incarnations: number
  /** Requests that reached a paused node and answers it had not sent, in order, for when it resumes. */
  held: (() => void)[]
  /** Crash as soon as a request has queued a write: the window between taking a write and committing it. */
  armed: boolean
}

/** What the cluster's faults did in one run. */
export interface NodeFaultStats {
  crashes: number
  /** Writes queued for a group commit when their node crashed: never committed, never answered. */
  writesLostInCrashes: number
  pauses: number
  /** Requests and answers that waited in a paused node. */
  heldRequests: number
}

/** Temp directories go to tmpfs when there is one: SQLite in WAL mode opens faster there. */
function tempBase(): string {
  return existsSync('/dev/shm') ? '/dev/shm' : tmpdir()
}

export interface SimClusterOptions {
  readonly nodes: number
  /** Nodes that run but are not in the first definition (joiners of a membership change). Default 0. */
  readonly spares?: number
  readonly partitions: number
  readonly store: Partial<StoreDef> & { name: string }
  /** Each node's clock (skewed ones, for the clock nemesis). Default the virtual clock itself. */
  readonly timeOf?: ((id: string) => Time) | undefined
  /** Watch reaps for tombstones younger than the grace period. Default off (it adds reads to each reap). */
  readonly watchReaps?: boolean | undefined
}

/**
 * Storage engines on SQLite files in a temp directory, so a node can crash
 * (close abruptly, losing the writes queued for the next group commit) and
 * come back on the same file with a new incarnation.
 */
export class SimCluster {
  /** The live engine of each node; MemoryTransports read it at every call, so restarts show through. */
  readonly engines = new Map<string, StorageEngine>()
  readonly cluster: ClusterDef
  readonly nodes: readonly NodeDef[]
  /** Running nodes outside the first definition. */
  readonly spares: readonly NodeDef[]
  readonly stats: NodeFaultStats = { crashes: 0, writesLostInCrashes: 0, pauses: 0, heldRequests: 0 }
  private readonly slots = new Map<string, NodeSlot>()
  private readonly dir: string
  private readonly timeOf: (id: string) => Time
  /** Tombstones reaped before their grace period had passed on true time, when watched. */
  readonly reaps: ReapWatch | null
  /** True virtual time a node last reaped a row, or -1: an export read after it re-imports without bringing anything back. */
  lastReapAtMs = -1

  constructor(
    options: SimClusterOptions,
    private readonly rng: Random,
    private readonly clock: VirtualClock,
    private readonly trace: Trace,
  ) {
    this.nodes = Array.from({ length: options.nodes }, (_, i) => ({ id: `n${i + 1}`, url: `mem://n${i + 1}` }))
    this.cluster = {
      version: 1,
      partitions: options.partitions,
      nodes: this.nodes,
      assignment: initialAssignment(this.nodes, options.partitions),
      stores: [storeDef(options.store)],
    }
    this.timeOf = options.timeOf ?? (() => clock.time)
    this.reaps = options.watchReaps ? new ReapWatch(clock, options.store.tombstoneGraceMs ?? 0) : null
    this.dir = mkdtempSync(join(tempBase(), 'kvorum-sim-'))
    this.spares = Array.from({ length: options.spares ?? 0 }, (_, i) => ({ id: `n${options.nodes + i + 1}`, url: `mem://n${options.nodes + i + 1}` }))
    for (const n of [...this.nodes, ...this.spares]) {
      this.slots.set(n.id, { status: 'up', epoch: 0, incarnations: 0, held: [], armed: false })
      this.open(n.id)
    }
  }

  /** Install the cluster definition on every node (before any fault). */
  async init(): Promise<void> {
    for (const n of this.nodes) await this.engines.get(n.id)?.putCluster(this.cluster)
  }

  /** The virtual time the engines run on, for the clients to share. */
  time(): Time {
    return this.clock.time
  }

  private slot(id: string): NodeSlot {
    const s = this.slots.get(id)
    if (!s) throw new Error(`assertion failed: no node ${id}`)
    return s
  }

  private open(id: string): void {
    const slot = this.slot(id)
    // Sibling order follows actor ids, so a random incarnation would make a replay take other branches.
    // The first is drawn before the engine opens (as recorded seeds expect); a node that drops a
    // partition's rows takes a fresh one from the same stream (MEMBERSHIP rule 4).
    let first: string | undefined = Buffer.from(this.rng.bytes(6)).toString('hex')
    const incarnationId = () => {
      const id = first ?? Buffer.from(this.rng.bytes(6)).toString('hex')
      first = undefined
      return id
    }
    const engine = new StorageEngine({ path: join(this.dir, `${id}.db`), nodeId: id, time: this.timeOf(id), incarnationId })
    this.reaps?.watch(id, engine)
    const reap = engine.reap.bind(engine)
    engine.reap = async (store, items) => {
      const reaped = await reap(store, items)
      if (reaped > 0) this.lastReapAtMs = this.clock.now
      return reaped
    }
    slot.incarnations++
    this.trace.actor(engine.incarnation, `${id}#${slot.incarnations}`)
    this.engines.set(id, engine)
  }

  status(id: string): NodeStatus {
    return this.slot(id).status
  }

  epoch(id: string): number {
    return this.slot(id).epoch
  }

  /** Run `fn` if the node (still in `epoch`) is running, keep it while paused, drop it if the node died. */
  private whenRunning(slot: NodeSlot, epoch: number, fn: () => void): 'run' | 'held' | 'lost' {
    if (slot.status === 'crashed' || slot.epoch !== epoch) return 'lost'
    if (slot.status === 'paused') {
      slot.held.push(fn)
      this.stats.heldRequests++
      return 'held'
    }
    fn()
    return 'run'
  }

  /** A request reaches the node: run it now, keep it while paused, lose it if the node is dead. */
  arrive(id: string, epoch: number, run: () => void): 'run' | 'held' | 'lost' {
    const slot = this.slot(id)
    const fate = this.whenRunning(slot, epoch, run)
    if (fate === 'run' && slot.armed && (this.engines.get(id) as StorageEngine).queueDepth > 0) this.crash(id)
    return fate
  }

  /** An answer leaves the node: a stopped process sends nothing until it resumes, a dead one never. */
  depart(id: string, epoch: number, send: () => void): 'run' | 'held' | 'lost' {
    return this.whenRunning(this.slot(id), epoch, send)
  }

  /** Crash the node right after the next request that queues a write (until `disarm`). */
  armCrash(id: string): void {
    const slot = this.slot(id)
    if (slot.status !== 'up') return
    slot.armed = true
    this.trace.event(`crash of ${id} armed`)
  }

  disarm(id: string): void {
    this.slot(id).armed = false
  }

  /**
   * kill -9: queued-but-uncommitted writes are gone (their callers never hear
   * back), committed ones stay in the WAL for the next open.
   */
  crash(id: string): void {
    const slot = this.slot(id)
    if (slot.status === 'crashed') return
    const lost = (this.engines.get(id) as StorageEngine).abandon()
    this.stats.crashes++
    this.stats.writesLostInCrashes += lost
    this.trace.event(`crash ${id} (${lost} queued writes lost)`)
    slot.status = 'crashed'
    slot.epoch++
    slot.held = []
    slot.armed = false
  }

  restart(id: string): void {
    const slot = this.slot(id)
    if (slot.status !== 'crashed') return
    this.open(id)
    slot.status = 'up'
    this.trace.event(`restart ${id} as ${this.trace.name((this.engines.get(id) as StorageEngine).incarnation)}`)
  }

  pause(id: string): void {
    const slot = this.slot(id)
    if (slot.status !== 'up') return
    slot.status = 'paused'
    this.stats.pauses++
    this.trace.event(`pause ${id}`)
  }

  /** SIGCONT: the requests that waited run first, in the order they arrived. */
  resume(id: string): void {
    const slot = this.slot(id)
    if (slot.status !== 'paused') return
    slot.status = 'up'
    const held = slot.held
    slot.held = []
    this.trace.event(`resume ${id} (${held.length} requests waited)`)
    for (const run of held) run()
  }

  /** Every node serving again. */
  healAll(): void {
    for (const n of this.nodes) {
      this.disarm(n.id)
      this.restart(n.id)
      this.resume(n.id)
    }
  }

  /** Close every engine cleanly and remove the files. */
  destroy(): void {
    for (const [id, e] of this.engines) if (this.slot(id).status !== 'crashed') e.close()
    rmSync(this.dir, { recursive: true, force: true })
  }
}
