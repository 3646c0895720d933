import type { Kvorum, RepairReport } from '@kvorum/client'
import type { ClusterDef, NodeDef } from '@kvorum/core'
import { type RebalanceView, RebalanceTracker } from './rebalance-view.js'
import { type RingView, ringView } from './ring-view.js'
import type { SiblingHistogram, SiblingSampler } from './siblings.js'
import type { NodeScrape } from './scrape.js'

/** Samples of the charts kept: five minutes at the default interval. */
export const HISTORY_SAMPLES = 300
/** Probe reads per poll at most: one per node, for each node's latency as the SDK sees it. */
const MAX_PROBES = 32

/** One node on the page. */
export interface NodeHealth {
  readonly id: string
  readonly url: string
  readonly zone?: string
  /** Answered this poll and the SDK's failure detector has it up. */
  readonly up: boolean
  /** Why not, when it is down. */
  readonly error?: string
  readonly sdkUp: boolean
  readonly latencyMsP50: number
  readonly latencyMsP99: number
  readonly latencySamples: number
  /** Operations of the dashboard's SDK waiting for or in a request to it. */
  readonly sdkQueued: number
  readonly opsPerSecond: number
  readonly errorsPerSecond: number
  readonly writeQueueDepth: number
  readonly keys: number
  readonly databaseBytes: number
  readonly hintsHeld: number
  readonly clusterVersion: number
}

/** One point of the charts. */
export interface HistoryPoint {
  readonly atMs: number
  readonly opsPerSecond: number
  readonly errorsPerSecond: number
  /** Mean of the up nodes' p50 and the largest p99, ms. */
  readonly latencyMsP50: number
  readonly latencyMsP99: number
}

/** Everything the page shows but the ring, from one poll. */
export interface Snapshot {
  readonly atMs: number
  /** The collector's pause between polls, which the page also polls at, ms. */
  readonly intervalMs: number
  /** How long this poll of the cluster took, ms. */
  readonly pollMs: number
  /** Set when the polls since this snapshot failed as a whole: why. */
  readonly pollError?: string
  readonly clusterVersion: number
  readonly partitions: number
  readonly nodes: readonly NodeHealth[]
  /** Keys held as hints for each target, summed over holders, largest first. */
  readonly hints: readonly { readonly target: string; readonly keys: number; readonly holders: number }[]
  readonly rebalance: RebalanceView | null
  readonly antiEntropy: { readonly atMs: number; readonly report: RepairReport } | { readonly error: string; readonly atMs: number } | null
  readonly history: readonly HistoryPoint[]
  /** Versions per read over the sampled keys (see siblings.ts). */
  readonly siblings: SiblingHistogram
  readonly sdk: { readonly quorumFailures: number; readonly timeouts: number; readonly readRepairs: number; readonly siblingsSeenMax: number }
}

export interface CollectorOptions {
  /** One node's /metrics, read (the dashboard's credential and TLS settings are the caller's). */
  readonly scrape: (node: NodeDef) => Promise<NodeScrape>
  /** Pause between polls, ms. */
  readonly intervalMs: number
  /** Each node request's timeout, ms. */
  readonly requestTimeoutMs: number
  /** Run an anti-entropy pass this often, ms; 0: never (the panel says so). */
  readonly repairEveryMs: number
  /** The clock, ms (wall). */
  readonly now: () => number
}

/** Polls the cluster through the dashboard's own SDK and the nodes' /metrics, keeping the latest snapshot and the charts' history. */
export class Collector {
  private readonly history: HistoryPoint[] = []
  private readonly previous = new Map<string, { atMs: number; scrape: NodeScrape }>()
  private readonly rebalance = new RebalanceTracker()
  private ring: RingView | null = null
  private latest: Snapshot | null = null
  /** Why the last poll failed as a whole (a bug, not a node down: those are caught per request). */
  private failure: string | null = null
  private antiEntropy: Snapshot['antiEntropy'] = null
  private timer: NodeJS.Timeout | undefined
  private stopped = false
  private lastRepairMs = 0
  private repairing: Promise<void> | null = null

  constructor(
    private readonly kv: Kvorum,
    private readonly siblings: SiblingSampler,
    private readonly options: CollectorOptions,
  ) {}

  /** Poll now and then every intervalMs until stop(). */
  async start(): Promise<void> {
    await this.poll()
    this.schedule()
  }

  private schedule(): void {
    if (this.stopped) return
    // A poll that fails as a whole keeps the last snapshot: the page's "updated" time then stops moving.
    this.timer = setTimeout(
      () =>
        void this.poll()
          .then(
            () => {
              this.failure = null
            },
            (e: Error) => {
              this.failure = e.message
            },
          )
          .finally(() => this.schedule()),
      this.options.intervalMs,
    )
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.repairing
  }

  snapshot(): Snapshot | null {
    return this.latest && this.failure ? { ...this.latest, pollError: this.failure } : this.latest
  }

  ringView(): RingView | null {
    return this.ring
  }

  private async poll(): Promise<void> {
    const { kv, options } = this
    const startMs = options.now()
    // The definition the nodes hold, the probe reads and the scrapes go out together: a poll takes the slowest, not the sum.
    const known = kv.cluster
    const [versions, , scrapes] = await Promise.all([
      kv.clusterVersions().catch(() => null),
      this.probe(known),
      Promise.all(known.nodes.map((n) => options.scrape(n).catch((e: Error) => e))),
    ])
    // A newer definition seen by clusterVersions shows from the next poll on, so the nodes and their scrapes stay aligned.
    const def = known
    if (this.ring?.version !== def.version) this.ring = ringView(def)
    const atMs = options.now()
    const stats = kv.stats()
    const detector = new Map(kv.nodes().map((n) => [n.id, n]))
    const nodes = def.nodes.map((n, i): NodeHealth => {
      const scrape = scrapes[i]
      const answered = versions?.find((v) => v.id === n.id)
      const sdk = stats.nodes[n.id]
      const sdkUp = detector.get(n.id)?.up ?? true
      const error = answered?.error ?? (scrape instanceof Error ? scrape.message : undefined) ?? (sdkUp ? undefined : detector.get(n.id)?.lastError)
      const ok = scrape instanceof Error ? undefined : scrape
      const rate = ok ? this.rates(n.id, atMs, ok) : { ops: 0, errors: 0 }
      if (!ok) this.previous.delete(n.id)
      const health: NodeHealth = {
        id: n.id,
        url: n.url,
        up: error === undefined && sdkUp,
        sdkUp,
        latencyMsP50: sdk?.latencyMsP50 ?? 0,
        latencyMsP99: sdk?.latencyMsP99 ?? 0,
        latencySamples: sdk?.latencySamples ?? 0,
        sdkQueued: (sdk?.queued ?? 0) + (sdk?.inFlight ?? 0),
        opsPerSecond: rate.ops,
        errorsPerSecond: rate.errors,
        writeQueueDepth: ok?.queueDepth ?? 0,
        keys: ok?.keys ?? 0,
        databaseBytes: ok?.databaseBytes ?? 0,
        hintsHeld: Object.values(ok?.hintsFor ?? {}).reduce((a, b) => a + b, 0),
        clusterVersion: ok?.clusterVersion ?? 0,
      }
      return { ...health, ...(n.zone ? { zone: n.zone } : {}), ...(error === undefined ? {} : { error }) }
    })
    this.record(atMs, nodes)
    await this.siblings.sample(def, new Set(nodes.filter((n) => n.up).map((n) => n.id))).catch(() => undefined)
    this.maybeRepair(atMs)
    this.latest = {
      atMs,
      intervalMs: options.intervalMs,
      pollMs: options.now() - startMs,
      clusterVersion: def.version,
      partitions: def.partitions,
      nodes,
      hints: hintTotals(scrapes),
      rebalance: this.rebalance.observe(def, atMs),
      antiEntropy: this.antiEntropy,
      history: this.history,
      siblings: this.siblings.histogram(),
      sdk: { quorumFailures: stats.quorumFailures, timeouts: stats.timeouts, readRepairs: stats.readRepairs, siblingsSeenMax: stats.siblingsSeenMax },
    }
  }

  /**
   * One read of an absent key per node (a key of a partition it owns), so the
   * SDK has a recent latency for every node and its failure detector hears
   * from each: a dashboard serves no traffic of its own.
   */
  private async probe(def: ClusterDef): Promise<void> {
    const store = def.stores[0]
    if (!store) return
    const handle = this.kv.store(store.name, { codec: 'bytes' })
    const firstOwned = new Map<string, number>()
    def.assignment.forEach((owner, q) => {
      if (!firstOwned.has(owner)) firstOwned.set(owner, q)
    })
    const probes = [...firstOwned.values()].slice(0, MAX_PROBES)
    await Promise.all(probes.map((q) => handle.get(probeKey(this.kv, q), { timeoutMs: this.options.requestTimeoutMs }).catch(() => undefined)))
  }

  private rates(id: string, atMs: number, scrape: NodeScrape): { ops: number; errors: number } {
    const before = this.previous.get(id)
    this.previous.set(id, { atMs, scrape })
    // A counter that went down is a restarted node: no rate until the next poll.
    if (!before || atMs <= before.atMs || scrape.requests < before.scrape.requests) return { ops: 0, errors: 0 }
    const s = (atMs - before.atMs) / 1000
    return { ops: (scrape.requests - before.scrape.requests) / s, errors: (scrape.serverErrors - before.scrape.serverErrors) / s }
  }

  private record(atMs: number, nodes: readonly NodeHealth[]): void {
    const up = nodes.filter((n) => n.up && n.latencySamples > 0)
    this.history.push({
      atMs,
      opsPerSecond: nodes.reduce((a, n) => a + n.opsPerSecond, 0),
      errorsPerSecond: nodes.reduce((a, n) => a + n.errorsPerSecond, 0),
      latencyMsP50: up.length ? up.reduce((a, n) => a + n.latencyMsP50, 0) / up.length : 0,
      latencyMsP99: Math.max(0, ...up.map((n) => n.latencyMsP99)),
    })
    if (this.history.length > HISTORY_SAMPLES) this.history.splice(0, this.history.length - HISTORY_SAMPLES)
  }

  private maybeRepair(atMs: number): void {
    const every = this.options.repairEveryMs
    if (every <= 0 || this.repairing || this.stopped || atMs - this.lastRepairMs < every) return
    this.lastRepairMs = atMs
    this.repairing = this.kv
      .repair()
      .then(
        (report) => {
          this.antiEntropy = { atMs: this.options.now(), report }
        },
        (e: Error) => {
          this.antiEntropy = { atMs: this.options.now(), error: e.message }
        },
      )
      .finally(() => {
        this.repairing = null
      })
  }
}

/** A key of partition q that no application writes (found by trying suffixes; bounded by the ring's spread). */
const probeKeys = new Map<string, Uint8Array>()
function probeKey(kv: Kvorum, q: number): Uint8Array {
  const ring = kv.ring
  const cacheKey = `${ring.partitions}/${q}`
  const known = probeKeys.get(cacheKey)
  if (known) return known
  const encoder = new TextEncoder()
  let key = encoder.encode('kvorum-dashboard-probe/0')
  for (let i = 0; i < ring.partitions * 64; i++) {
    key = encoder.encode(`kvorum-dashboard-probe/${i}`)
    if (ring.partitionOf(key) === q) break
  }
  probeKeys.set(cacheKey, key)
  return key
}

function hintTotals(scrapes: readonly (NodeScrape | Error)[]): Snapshot['hints'] {
  const totals = new Map<string, { keys: number; holders: number }>()
  for (const s of scrapes) {
    if (s instanceof Error) continue
    for (const [target, keys] of Object.entries(s.hintsFor)) {
      if (keys <= 0) continue
      const t = totals.get(target) ?? { keys: 0, holders: 0 }
      totals.set(target, { keys: t.keys + keys, holders: t.holders + 1 })
    }
  }
  return [...totals].map(([target, t]) => ({ target, ...t })).sort((a, b) => b.keys - a.keys)
}
