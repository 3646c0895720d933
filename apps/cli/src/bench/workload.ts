import { randomBytes } from 'node:crypto'
import { type Kvorum, type Store, counter, type Counter } from '@kvorum/client'
import { Histogram } from './histogram.js'
import { totalCpu } from './cpu.js'
import { type PaceStats, paced } from './pace.js'
import { ScrambledZipfian } from './zipf.js'

/** YCSB-style mixes, plus `update`: read-modify-write of a CRDT counter with a merge function. */
export type WorkloadName = 'A' | 'B' | 'C' | 'update'

export const READ_SHARE: Record<WorkloadName, number> = { A: 0.5, B: 0.95, C: 1, update: 0 }

export interface WorkloadOptions {
  readonly workload: WorkloadName
  readonly concurrency: number
  readonly seconds: number
  readonly records: number
  readonly valueBytes: number
  /** Open loop at this many operations a second (latency from each one's intended start); absent: closed loop. */
  readonly rate?: number | undefined
  /** Called about once a second with the operations done so far. */
  readonly onTick?: (done: number, elapsedS: number, recent: Histogram) => void
  /** Node processes whose CPU counts toward the run (own cluster only). */
  readonly nodePids?: readonly number[]
  /**
   * Run in this many slices of equal length, calling `before` ahead of each
   * (the bench measures its fan-out ceiling there). Default: one slice.
   */
  readonly slices?: { readonly count: number; readonly before: () => Promise<void> }
}

export interface OpStats {
  count: number
  errors: number
  hist: Histogram
  errorCodes: Record<string, number>
}

export interface WorkloadResult {
  readonly seconds: number
  readonly ops: Record<string, OpStats>
  /** CPU seconds used by this process and the nodes during the run; null when unknown. */
  readonly cpuSeconds: number | null
  /** For `update`: increments acknowledged, and the counter total read back at the end. */
  readonly increments?: { acknowledged: number; readBack: number }
  /** Operations issued, and (open loop) how many started over 1 ms after their intended time. */
  readonly pace: PaceStats
}

export const keyOf = (i: number) => `user${String(i).padStart(12, '0')}`

const noise = randomBytes(64 * 1024)
let writes = 0

/**
 * A value of the run's size whose bytes differ every write (SQLite skips
 * identical rewrites): a window onto a random buffer, stamped with a counter.
 * Cheaper than fresh random bytes, which showed in the client's profile.
 */
export function freshValue(bytes: number): Uint8Array {
  const out = new Uint8Array(bytes)
  const start = (writes * 61) % (noise.length - Math.min(bytes, noise.length))
  out.set(noise.subarray(start, start + Math.min(bytes, noise.length)))
  new DataView(out.buffer).setUint32(0, writes++ >>> 0)
  return out
}

/** Load `records` keys with `concurrency` writers, with progress. */
export async function load(
  store: Store<Uint8Array>,
  records: number,
  valueBytes: number,
  concurrency: number,
  onProgress: (done: number) => void,
): Promise<void> {
  let next = 0
  let done = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < records; i = next++) {
        await store.put(keyOf(i), freshValue(valueBytes))
        if (++done % 1000 === 0) onProgress(done)
      }
    }),
  )
  onProgress(done)
}

function stats(): OpStats {
  return { count: 0, errors: 0, hist: new Histogram(), errorCodes: {} }
}

/**
 * The workload's operations on keys chosen by scrambled zipfian, closed loop
 * or open (`rate`), run in slices that add up: the benchmark interleaves
 * slices of Kvorum, of its ceilings and of the peer, so all see the same
 * minutes of this machine.
 */
export class Workload {
  private readonly zipf: ScrambledZipfian
  private readonly store: Store<Uint8Array>
  private readonly counters: Store<Counter>
  /** Updates carry the context of this process's last read or write of the key, as an application would. */
  private readonly contexts = new Map<string, string>()
  readonly ops: Record<string, OpStats> = { read: stats(), update: stats() }
  private readonly pace: PaceStats = { issued: 0, late: 0, scheduledS: 0 }
  private readonly writer = `bench-${process.pid}`
  private workSeconds = 0
  private cpuSeconds: number | null = 0
  private acknowledged = 0
  private sliceStarted = 0
  /** True while a slice runs. */
  working = false
  /** Operations done, and their latencies since the last `takeRecent`. */
  done = 0
  private recent = new Histogram()

  constructor(
    private readonly opts: Omit<WorkloadOptions, 'onTick' | 'slices'>,
    kv: Kvorum,
    storeName: string,
  ) {
    this.zipf = new ScrambledZipfian(opts.records)
    this.store = kv.store<Uint8Array>(storeName)
    this.counters = kv.store<Counter>(storeName, { codec: 'json', merge: counter.merge })
  }

  /** Workload seconds so far, the running slice included. */
  get elapsedS(): number {
    return this.workSeconds + (this.working ? (performance.now() - this.sliceStarted) / 1000 : 0)
  }

  /** The latencies recorded since the last call. */
  takeRecent(): Histogram {
    const r = this.recent
    this.recent = new Histogram()
    return r
  }

  private record(name: string, t0: number, error?: unknown): void {
    const ms = performance.now() - t0
    const s = this.ops[name] as OpStats
    s.count++
    s.hist.record(ms)
    this.recent.record(ms)
    this.done++
    if (error) {
      s.errors++
      const code = (error as { code?: string }).code ?? 'ERROR'
      s.errorCodes[code] = (s.errorCodes[code] ?? 0) + 1
    }
  }

  private readonly one = async (t0: number, w: number): Promise<void> => {
    const key = keyOf(this.zipf.next())
    const workload = this.opts.workload
    const op = workload === 'update' ? 'rmw' : Math.random() < READ_SHARE[workload] ? 'read' : 'update'
    try {
      if (op === 'rmw') {
        await this.counters.update(`counter-${key}`, (vs) => counter.add(counter.merge(vs.length ? vs : [counter.empty()]), `${this.writer}-${w}`, 1))
        this.acknowledged++
      } else if (op === 'read') {
        this.contexts.set(key, (await this.store.get(key)).context)
      } else {
        const context = this.contexts.get(key)
        this.contexts.set(key, (await this.store.put(key, freshValue(this.opts.valueBytes), context === undefined ? {} : { context })).context)
      }
      this.record(op === 'read' ? 'read' : 'update', t0)
    } catch (e) {
      this.record(op === 'read' ? 'read' : 'update', t0, e)
    }
  }

  /** Run the workload for `seconds` more. */
  async slice(seconds: number): Promise<void> {
    const pids = this.opts.nodePids ?? []
    const cpu0 = totalCpu(pids)
    this.sliceStarted = performance.now()
    this.working = true
    const rate = this.opts.rate
    await paced({ concurrency: this.opts.concurrency, ...(rate === undefined ? {} : { rate }) }, this.sliceStarted + seconds * 1000, this.one, this.pace)
    this.working = false
    this.workSeconds += (performance.now() - this.sliceStarted) / 1000
    const cpu1 = totalCpu(pids)
    this.cpuSeconds = cpu0 === null || cpu1 === null || this.cpuSeconds === null ? null : this.cpuSeconds + (cpu1 - cpu0)
  }

  /** What the slices did; for `update`, the counters read back to check nothing acknowledged was lost. */
  async result(): Promise<WorkloadResult> {
    const base = { seconds: this.workSeconds, ops: this.ops, cpuSeconds: this.opts.nodePids ? this.cpuSeconds : null, pace: this.pace }
    if (this.opts.workload !== 'update') return base
    return { ...base, increments: { acknowledged: this.acknowledged, readBack: await readBackCounters(this.counters, this.opts.records) } }
  }
}

/** Run the workload in `opts.slices` slices (one by default), with progress about once a second. */
export async function runWorkload(kv: Kvorum, storeName: string, opts: WorkloadOptions): Promise<WorkloadResult> {
  const run = new Workload(opts, kv, storeName)
  const slices = opts.slices ?? { count: 1, before: async () => undefined }
  const ticker = setInterval(() => {
    // Progress counts workload time only: nothing is reported while a ceiling slice runs.
    if (run.working) opts.onTick?.(run.done, run.elapsedS, run.takeRecent())
  }, 1000)
  try {
    for (let slice = 0; slice < slices.count; slice++) {
      await slices.before()
      await run.slice(opts.seconds / slices.count)
    }
  } finally {
    clearInterval(ticker)
  }
  return run.result()
}

/** Sum every counter key touched, read with r=n so nothing acknowledged is missed. */
async function readBackCounters(store: Store<Counter>, records: number): Promise<number> {
  let total = 0
  const keys = Array.from({ length: records }, (_, i) => `counter-${keyOf(i)}`)
  for (let i = 0; i < keys.length; i += 500) {
    const res = await store.getMany(keys.slice(i, i + 500), { r: 3, timeoutMs: 10_000 })
    for (const r of res.values()) {
      if (!r.ok) throw r.error
      if (r.value.found) total += counter.value(r.value.values[0] as Counter)
    }
  }
  return total
}
