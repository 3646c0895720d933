import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { NodeDef } from '@kvorum/core'
import type { Kvorum } from '@kvorum/client'
import { BLACKHOLE, FaultProxy, PASS, type ProxyMode } from '../support/fault-proxy.js'
import { startNode } from '../support/node-process.js'
import { type ProcessCluster, startCluster } from '../support/process-cluster.js'
import { type CliProcess, spawnCli } from './cli.js'
import { type ClientProcess, spawnClient } from './clients.js'
import { History } from '../support/history.js'
import { STORES, type SdkState, type WorkerConfig, type WorkerEvent } from './protocol.js'
import type { SdkTrace } from './sdks.js'

/** Options of a fault-suite cluster. */
export interface HarnessOptions {
  /** Node processes. Default 3. */
  readonly nodes?: number
  /** Client processes, each with its own proxy in front of every node. Default 3. */
  readonly clients?: number
  /** Grace before a tombstone every replica holds may be reaped, ms. Default 5000: short, so repair reaps during the run. */
  readonly tombstoneGraceMs?: number
  /**
   * One more client process whose SDK does not poll for new definitions, for
   * a script to hold idle across a membership change ({@link FaultHarness.holdClient}):
   * released, it still holds the definition from before. Default false.
   */
  readonly idleClient?: boolean
  /** Every store's r. Default 2. */
  readonly readQuorum?: number
}

/**
 * How often the incarnation watch asks every node's /health, ms. A node takes
 * a new incarnation only when it installs a definition that drops partitions,
 * and a driver installs versions a drain (over 2 s) apart, so none is missed.
 */
const INCARNATION_POLL_MS = 200

/** Every harness not yet closed, so an interrupted run can still stop what it started. */
const open = new Set<FaultHarness>()

/**
 * Node processes behind per-client fault proxies, client processes running
 * workloads, and an operator client that reaches the nodes directly (for
 * handoff, repair and the final reads). Faults are methods; every one is
 * logged with its time so a report can say what happened when.
 */
export class FaultHarness {
  readonly history = new History()
  /** Each client process's SDK: the definitions it held when it connected, was held, released, and finished. */
  readonly sdks = new Map<number, SdkTrace>()
  readonly faults: string[] = []
  /** Every incarnation a node process reported, in start order: none may repeat. */
  readonly incarnations: string[] = []
  /** Incarnations a running node took without a restart (a membership change dropping partitions), seen by {@link watchIncarnations}. */
  readonly adopted: string[] = []
  readonly clients: ClientProcess[] = []
  /** CLI processes (membership drivers) this harness started; close() kills any still running. */
  private readonly drivers: CliProcess[] = []
  /** Callbacks waiting for a client to report its loops parked. */
  private readonly holding = new Map<number, () => void>()
  /** The incarnation watch while it runs; close() stops it. */
  private watch: { stop(): Promise<void> } | undefined
  private readonly paused = new Set<string>()
  private readonly stopped = new Set<string>()
  private readonly began = Date.now()

  private constructor(
    /** Tombstone grace of the registers store, ms. */
    readonly tombstoneGraceMs: number,
    readonly cluster: ProcessCluster,
    /** Reaches the nodes directly; replaced by a fresh client after a membership change ({@link refreshOperator}). */
    public operator: Kvorum,
    /** `client/node` to the proxy that client uses for that node. */
    private readonly proxies: Map<string, FaultProxy>,
    private readonly snapshots: string,
    /** The client with no definition poll, to hold idle across a change; undefined without `idleClient`. */
    readonly idleClient: number | undefined,
  ) {
    for (const n of cluster.nodes.values()) {
      if (!n.proc) continue
      this.incarnations.push(n.proc.incarnation)
      this.log(`${n.id} is incarnation ${n.proc.incarnation}`)
    }
    open.add(this)
  }

  static async start(options: HarnessOptions = {}): Promise<FaultHarness> {
    const grace = options.tombstoneGraceMs ?? 5000
    const writers = options.clients ?? 3
    const idle = options.idleClient ? writers : undefined
    const r = options.readQuorum === undefined ? {} : { r: options.readQuorum }
    const cluster = await startCluster({
      nodes: options.nodes ?? 3,
      stores: [
        { name: STORES.carts, ...r },
        { name: STORES.lww, conflict: 'lww', ...r },
        { name: STORES.registers, tombstoneGraceMs: grace, ...r },
      ],
    })
    const proxies = new Map<string, FaultProxy>()
    try {
      for (let c = 0; c < writers + (idle === undefined ? 0 : 1); c++) {
        for (const node of cluster.nodes.values()) proxies.set(`${c}/${node.id}`, await FaultProxy.start(node.port))
      }
      const operator = await cluster.connect()
      return new FaultHarness(grace, cluster, operator, proxies, mkdtempSync(join(tmpdir(), 'kvorum-snapshots-')), idle)
    } catch (e) {
      await Promise.all([...proxies.values()].map((p) => p.close()))
      await cluster.close()
      throw e
    }
  }

  /** Close every harness still open (for SIGINT in the long run). */
  static async closeAll(): Promise<void> {
    await Promise.all([...open].map((h) => h.close()))
  }

  get nodeIds(): string[] {
    return [...this.cluster.nodes.keys()]
  }

  get clientCount(): number {
    return new Set([...this.proxies.keys()].map((k) => k.split('/')[0])).size
  }

  /** The nodes of the operator's cluster definition: the final ones once {@link refreshOperator} ran after a membership change. */
  get members(): readonly NodeDef[] {
    return this.operator.cluster.nodes
  }

  node(id: string): NodeDef {
    const def = this.cluster.def.nodes.find((n) => n.id === id)
    if (!def) throw new Error(`assertion failed: no node ${id}`)
    return def
  }

  log(what: string): void {
    this.faults.push(`${((Date.now() - this.began) / 1000).toFixed(1)}s ${what}`)
  }

  proxy(client: number, node: string): FaultProxy {
    const p = this.proxies.get(`${client}/${node}`)
    if (!p) throw new Error(`assertion failed: no proxy for client ${client} to ${node}`)
    return p
  }

  /** Set the mode of the links from `clients` to `node`. */
  cut(node: string, clients: readonly number[], mode: ProxyMode = BLACKHOLE): void {
    for (const c of clients) this.proxy(c, node).setMode(mode)
    this.log(`${mode.kind} ${node} for clients ${clients.join(',')}`)
  }

  healNetwork(): void {
    for (const p of this.proxies.values()) if (p.mode.kind !== 'pass') p.setMode(PASS)
    this.log('network healed')
  }

  /**
   * Start client processes, then hand each its config at once; the workload
   * starts now. Returns the start time every client measures from.
   */
  async startClients(config: Omit<WorkerConfig, 'worker' | 'token' | 'nodes' | 'seed' | 'startedAt'>, seed: number): Promise<number> {
    const count = this.clientCount
    const spawned = await Promise.allSettled(Array.from({ length: count }, (_, c) => spawnClient(c, (w, e) => this.record(w, e))))
    const started = spawned.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))
    // Keep the ones that did start, so close() stops them even when another failed.
    this.clients.push(...started)
    const failed = spawned.find((s) => s.status === 'rejected')
    if (failed) throw failed.reason
    const startedAt = Date.now()
    for (const client of started) {
      const nodes = Object.fromEntries(this.nodeIds.map((id) => [id, this.proxy(client.worker, id).url]))
      this.sdks.set(client.worker, { pid: client.pid, connects: 0 })
      // The idle client learns of a new definition only from a node's answer: no poll.
      const poll = client.worker === this.idleClient ? { pollIntervalMs: 0 } : {}
      client.start({ ...config, ...poll, startedAt, worker: client.worker, token: this.cluster.token, nodes, seed: seed * 1000 + client.worker })
    }
    this.log(`${count} clients started`)
    return startedAt
  }

  /** Feed one event from a client process into the history. */
  private record(worker: number, event: WorkerEvent): void {
    const sdk = this.sdks.get(worker)
    if (event.type === 'connected' && sdk) {
      sdk.connects++
      sdk.connected = event
    } else if (event.type === 'released' && sdk) sdk.released = event
    else if (event.type === 'done' && sdk) sdk.done = event
    else if (event.type === 'held' && sdk) {
      sdk.held = event
      this.holding.get(worker)?.()
    } else if (event.type === 'invoke') this.history.invoke(String(worker), event.op, event)
    else if (event.type === 'complete') this.history.complete(String(worker), event.op, event)
  }

  /**
   * Park client `worker`'s loops between operations and wait until every one
   * is parked (its SDK is then idle); throws if that takes over `ms`.
   */
  async holdClient(worker: number, ms: number): Promise<SdkState> {
    const client = this.clients.find((c) => c.worker === worker)
    if (!client) throw new Error(`assertion failed: no client ${worker}`)
    let timer: NodeJS.Timeout | undefined
    const held = new Promise<boolean>((resolve) => {
      this.holding.set(worker, () => resolve(true))
      timer = setTimeout(() => resolve(false), ms)
    })
    client.hold()
    const ok = await held
    clearTimeout(timer)
    this.holding.delete(worker)
    const state = this.sdks.get(worker)?.held
    if (!ok || !state) throw new Error(`client ${worker} did not park its loops within ${ms} ms:\n${client.output()}`)
    this.log(`client ${worker} (PID ${client.pid}) held idle at cluster version ${state.version}`)
    return state
  }

  /** Let a held client go on with its loops. */
  releaseClient(worker: number): void {
    const client = this.clients.find((c) => c.worker === worker)
    if (!client) throw new Error(`assertion failed: no client ${worker}`)
    client.release()
    this.log(`client ${worker} released`)
  }

  /** Tell every client to stop and wait for all of them to exit (killed by PID if they hang). */
  async stopClients(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.stop()))
  }

  async kill(id: string): Promise<void> {
    await this.cluster.kill(id)
    this.stopped.add(id)
    this.log(`SIGKILL ${id}`)
  }

  /** SIGKILL a node whose disk is lost for good: heal() does not start it again. */
  async killForGood(id: string): Promise<void> {
    await this.kill(id)
    this.stopped.delete(id)
    this.log(`${id} is gone for good`)
  }

  /** SIGTERM: the node finishes in-flight writes and closes its database cleanly. */
  async stop(id: string): Promise<void> {
    await this.cluster.stop(id)
    this.stopped.add(id)
    this.log(`SIGTERM ${id}`)
  }

  /** Start a stopped node on its old port; `wipe` deletes its data first. */
  async start(id: string, options: { wipe?: boolean } = {}): Promise<void> {
    const proc = await this.cluster.start(id, options)
    this.stopped.delete(id)
    this.incarnations.push(proc.incarnation)
    this.log(`started ${id}${options.wipe ? ' (wiped)' : ''} as incarnation ${proc.incarnation}`)
  }

  /**
   * Start a node process that is in no cluster definition yet (a joiner for
   * `cluster rebalance --add`); it answers /health and holds no data. Stopped
   * like the others by close(). Returns its URL.
   */
  async addNode(id: string): Promise<string> {
    if (this.cluster.nodes.has(id)) throw new Error(`assertion failed: node ${id} exists`)
    const dir = join(this.snapshots, `node-${id}`)
    const proc = await startNode({ data: dir, id, token: this.cluster.token })
    // In the cluster's table, so kill, start and close treat it like the first nodes.
    this.cluster.nodes.set(id, { id, dir, port: proc.port, proc })
    this.incarnations.push(proc.incarnation)
    this.log(`started ${id} outside the cluster at ${proc.url} as incarnation ${proc.incarnation}`)
    return proc.url
  }

  /**
   * Run `kvorum <args> --seeds <every first node> --token <token>` as a child
   * process (any one seed that answers suffices, as for an operator who lists
   * them all); close() kills it if still running.
   */
  cli(args: readonly string[]): CliProcess {
    const driver = spawnCli([...args, '--seeds', this.cluster.seeds.join(','), '--token', this.cluster.token])
    this.drivers.push(driver)
    this.log(`started \`kvorum ${args.join(' ')}\` as PID ${driver.pid}`)
    return driver
  }

  /**
   * A fresh operator client, bootstrapped from the nodes and refreshed to the
   * newest definition they hold: the final checks then read the replicas of
   * the cluster as it is now, not as it was at start.
   */
  async refreshOperator(): Promise<void> {
    const fresh = await this.cluster.connect()
    // clusterVersions() refreshes the client to the newest definition any node holds.
    await fresh.clusterVersions()
    this.operator = fresh
    this.log(`operator holds cluster version ${fresh.cluster.version}: ${fresh.cluster.nodes.map((n) => n.id).join(', ')}`)
  }

  /**
   * Until close(), poll every running node for its incarnation and record
   * new ones: a membership change gives a node a new incarnation whenever it
   * drops partitions (MEMBERSHIP rule 4), without a restart, and the dot
   * audit must know every actor.
   */
  watchIncarnations(): void {
    if (this.watch) return
    let stopped = false
    let timer: NodeJS.Timeout | undefined
    let wake: (() => void) | undefined
    const poll = async () => {
      for (const node of this.cluster.nodes.values()) {
        if (!node.proc || this.paused.has(node.id)) continue
        try {
          const health = await this.cluster.transport.node({ id: node.id, url: `http://127.0.0.1:${node.port}` }).health({ timeoutMs: 1000 })
          if (!this.incarnations.includes(health.incarnation) && !this.adopted.includes(health.incarnation)) {
            this.adopted.push(health.incarnation)
            this.log(`${node.id} is now incarnation ${health.incarnation}`)
          }
        } catch {
          // Down or slow: a node that is not running coordinates nothing, so the next poll suffices.
        }
      }
    }
    const loop = (async () => {
      for (let i = 0; i < 1_000_000 && !stopped; i++) {
        await poll()
        await new Promise<void>((r) => {
          wake = r
          timer = setTimeout(r, INCARNATION_POLL_MS)
        })
      }
    })()
    this.watch = {
      async stop() {
        stopped = true
        clearTimeout(timer)
        wake?.()
        await loop
        await poll()
      },
    }
    this.log('watching incarnations')
  }

  pause(id: string): void {
    this.cluster.pause(id)
    this.paused.add(id)
    this.log(`SIGSTOP ${id}`)
  }

  resume(id: string): void {
    this.cluster.resume(id)
    this.paused.delete(id)
    this.log(`SIGCONT ${id}`)
  }

  private dirOf(id: string): string {
    const node = this.cluster.nodes.get(id)
    if (!node) throw new Error(`assertion failed: no node ${id}`)
    if (node.proc) throw new Error(`assertion failed: node ${id} must be stopped to copy its data`)
    return node.dir
  }

  /** Copy a stopped node's data directory (database, WAL and all); returns the copy's name. */
  snapshot(id: string): string {
    const name = join(this.snapshots, `${id}-${Date.now()}`)
    cpSync(this.dirOf(id), name, { recursive: true })
    this.log(`copied the data of ${id}`)
    return name
  }

  /** Put an old copy back in place of a stopped node's data directory. */
  restore(id: string, snapshot: string): void {
    const dir = this.dirOf(id)
    if (!existsSync(snapshot)) throw new Error(`assertion failed: no snapshot ${snapshot}`)
    rmSync(dir, { recursive: true, force: true })
    cpSync(snapshot, dir, { recursive: true })
    this.log(`restored ${id} from its old copy`)
  }

  /** Undo every fault still in force: links pass, paused nodes continue, stopped nodes start. */
  async heal(): Promise<void> {
    if ([...this.proxies.values()].some((p) => p.mode.kind !== 'pass')) this.healNetwork()
    for (const id of [...this.paused]) this.resume(id)
    for (const id of [...this.stopped]) await this.start(id)
  }

  /** Stop every client and node process by PID, close the proxies, delete the data. */
  async close(): Promise<void> {
    if (!open.delete(this)) return
    await Promise.all(this.clients.map((c) => c.stop().catch(() => undefined)))
    await Promise.all(this.drivers.map((d) => d.kill()))
    await this.watch?.stop()
    await Promise.all([...this.proxies.values()].map((p) => p.close()))
    await this.cluster.close()
    rmSync(this.snapshots, { recursive: true, force: true })
  }
}
