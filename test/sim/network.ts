import { NodeUnavailableError, type StoreBatch, TimeoutError } from '@kvorum/core'
import type { MemoryTransport } from '@kvorum/client/testing'
import type { VirtualClock } from './clock.js'
import type { SimCluster } from './cluster.js'
import type { Random } from '../support/random.js'
import type { Trace } from './trace.js'

/** Per-message fault odds and delays. */
export interface FaultRates {
  /** The request never reaches the node. */
  readonly dropRequest: number
  /** The node does the work but the answer never comes back. */
  readonly dropResponse: number
  /**
   * The node receives the request twice (the copy's answer is ignored);
   * never a store batch that coordinates writes (see `coordinates`).
   */
  readonly duplicate: number
  /** One-way delay, uniform in 0..delayMaxMs. */
  readonly delayMaxMs: number
  /** Odds of a slow message, delayed up to spikeMaxMs (past request timeouts). */
  readonly spikeChance: number
  readonly spikeMaxMs: number
}

/** A fault-free network: answers still take a little time, so interleavings stay varied. */
export const CALM: FaultRates = { dropRequest: 0, dropResponse: 0, duplicate: 0, delayMaxMs: 2, spikeChance: 0, spikeMaxMs: 0 }

/** How a client is cut off from a node: packets vanish (timeouts), or connections are refused at once. */
export type CutMode = 'blackhole' | 'refuse'

type Intercept = MemoryTransport['intercept']

/**
 * A store batch that coordinates writes. HTTP delivers its POST at most once
 * (undici repeats no request that is not idempotent, and the SDK never sends
 * a coordinate again once it may have applied: double-coordinate.test.ts),
 * so the network does not copy one: a copy would be a second write with its
 * own dot, which a delete that read the first does not cover (seed 307).
 */
function coordinates(op: string, args: readonly unknown[]): boolean {
  return op === 'batch' && ((args[1] as StoreBatch | undefined)?.coordinates.length ?? 0) > 0
}

/** How late a copied coordinate lands with the `copy-coordinates` mutant, ms: after later writes and deletes of its key. */
const COPY_LAG_MS = 300

/**
 * The seeded scheduler between SDK clients and nodes, installed through
 * MemoryTransport.intercept. Each client has its own transport, so cuts are
 * asymmetric: one client may reach a node another cannot. Every request gets
 * a timeout of its own (as the HTTP transport's AbortSignal), random delays
 * each way (which reorders messages), and may be dropped, its answer lost,
 * or delivered twice.
 */
/** What the network did in one run. */
export interface NetworkStats {
  messages: number
  droppedRequests: number
  droppedAnswers: number
  duplicated: number
  refused: number
  timedOut: number
}

export class Network {
  rates: FaultRates
  readonly stats: NetworkStats = { messages: 0, droppedRequests: 0, droppedAnswers: 0, duplicated: 0, refused: 0, timedOut: 0 }
  private readonly cuts = new Map<string, Map<string, CutMode>>()
  private seq = 0
  /** Copy coordinate batches too, and late (the `copy-coordinates` mutant). Default false. */
  copiesCoordinates = false

  constructor(
    private readonly cluster: SimCluster,
    private readonly rng: Random,
    private readonly clock: VirtualClock,
    private readonly trace: Trace,
    rates: FaultRates,
  ) {
    this.rates = rates
  }

  cut(client: string, node: string, mode: CutMode): void {
    let m = this.cuts.get(client)
    if (!m) {
      m = new Map()
      this.cuts.set(client, m)
    }
    m.set(node, mode)
    this.trace.event(`cut ${client} -x- ${node} (${mode})`)
  }

  mend(client: string, node: string): void {
    if (this.cuts.get(client)?.delete(node)) this.trace.event(`mend ${client} --- ${node}`)
  }

  /** No cuts, no message faults. */
  heal(): void {
    this.cuts.clear()
    this.rates = CALM
    this.trace.event('network healed')
  }

  private cutOf(client: string, node: string): CutMode | undefined {
    return this.cuts.get(client)?.get(node)
  }

  private delay(): number {
    const r = this.rates
    if (r.spikeChance > 0 && this.rng.chance(r.spikeChance)) return this.rng.range(r.delayMaxMs, r.spikeMaxMs)
    return this.rng.range(0, r.delayMaxMs)
  }

  /** The intercept for one client's transport. */
  interceptFor(client: string): Intercept {
    return (node, op, opts, call, args) =>
      new Promise((resolve, reject) => {
        const id = ++this.seq
        const stats = this.stats
        stats.messages++
        const tag = `${client}->${node} ${op}#${id}`
        const trace = (what: string) => this.trace.message(`${tag} ${what}`)
        let done = false
        const finish = (ok: boolean, value: unknown) => {
          if (done) return
          done = true
          this.clock.clear(timer)
          if (ok) resolve(value)
          else reject(value)
        }
        const timer = this.clock.setTimeout(() => {
          stats.timedOut++
          trace('timed out')
          finish(false, new TimeoutError(`${op} ${node}`, opts.timeoutMs))
        }, opts.timeoutMs)
        const cut = this.cutOf(client, node)
        if (this.cluster.status(node) === 'crashed' || cut === 'refuse') {
          // Nothing listens on the port (or a firewall rejects): refused at once.
          stats.refused++
          trace('refused')
          this.clock.setTimeout(() => finish(false, new NodeUnavailableError(node, 'connection refused (simulated)')), this.rng.range(0, 2))
          return
        }
        if (cut === 'blackhole' || this.rng.chance(this.rates.dropRequest)) {
          stats.droppedRequests++
          trace('request dropped')
          return
        }
        const epoch = this.cluster.epoch(node)
        const respond = (ok: boolean, value: unknown) => {
          const fate = this.cluster.depart(node, epoch, () => {
            if (this.rng.chance(this.rates.dropResponse)) {
              stats.droppedAnswers++
              return trace('answer dropped')
            }
            this.clock.setTimeout(() => {
              if (this.cutOf(client, node) === 'blackhole') return trace('answer cut off')
              trace(ok ? 'answered' : `failed ${(value as Error).message}`)
              finish(ok, value)
            }, this.delay())
          })
          if (fate !== 'run') trace(`answer ${fate}`)
        }
        const deliver = (copy: boolean) => () => {
          const fate = this.cluster.arrive(node, epoch, () => {
            const answer = call()
            if (copy) answer.catch(() => undefined)
            else
              answer.then(
                (v) => respond(true, v),
                (e: unknown) => respond(false, e),
              )
          })
          trace(`${copy ? 'copy ' : ''}${fate}`)
        }
        this.clock.setTimeout(deliver(false), this.delay())
        const copied = coordinates(op, args)
        if (this.copiesCoordinates && copied) {
          stats.duplicated++
          this.clock.setTimeout(deliver(true), this.delay() + COPY_LAG_MS)
        } else if (this.rng.chance(this.rates.duplicate)) {
          // The delay is drawn for a coordinate's copy too, so the rest of the seed draws as before.
          const delayMs = this.delay()
          if (!copied) {
            stats.duplicated++
            this.clock.setTimeout(deliver(true), delayMs)
          }
        }
      })
  }
}
