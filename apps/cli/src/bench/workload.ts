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

/** The workload's operations on keys chosen by scrambled zipfian, closed loop or open (`rate`). */
export async function runWorkload(kv: Kvorum, storeName: string, opts: WorkloadOptions): Promise<WorkloadResult> {
  const zipf = new ScrambledZipfian(opts.records)
  const store = kv.store<Uint8Array>(storeName)
  const counters = kv.store<Counter>(storeName, { codec: 'json', merge: counter.merge })
  // Updates carry the context of this process's last read or write of the key, as an application would.
  const contexts = new Map<string, string>()
  const ops: Record<string, OpStats> = { read: stats(), update: stats() }
  const slices = opts.slices ?? { count: 1, before: async () => undefined }
  let workSeconds = 0
  let cpuSeconds: number | null = 0
  let sliceStarted = performance.now()
  let working = false
  let done = 0
  let acknowledged = 0
  let recent = new Histogram()
  const ticker = setInterval(() => {
    // Progress counts workload time only: nothing is reported while a ceiling slice runs.
    if (!working) return
    opts.onTick?.(done, workSeconds + (performance.now() - sliceStarted) / 1000, recent)
    recent = new Histogram()
  }, 1000)
  const record = (name: string, t0: number, error?: unknown) => {
    const ms = performance.now() - t0
    const s = ops[name] as OpStats
    s.count++
    s.hist.record(ms)
    recent.record(ms)
    done++
    if (error) {
      s.errors++
      const code = (error as { code?: string }).code ?? 'ERROR'
      s.errorCodes[code] = (s.errorCodes[code] ?? 0) + 1
    }
  }
  const writer = `bench-${process.pid}`
  const one = async (t0: number, w: number) => {
    const key = keyOf(zipf.next())
    const op = opts.workload === 'update' ? 'rmw' : Math.random() < READ_SHARE[opts.workload] ? 'read' : 'update'
    try {
      if (op === 'rmw') {
        await counters.update(`counter-${key}`, (vs) => counter.add(counter.merge(vs.length ? vs : [counter.empty()]), `${writer}-${w}`, 1))
        acknowledged++
      } else if (op === 'read') {
        contexts.set(key, (await store.get(key)).context)
      } else {
        const context = contexts.get(key)
        contexts.set(key, (await store.put(key, freshValue(opts.valueBytes), context === undefined ? {} : { context })).context)
      }
      record(op === 'read' ? 'read' : 'update', t0)
    } catch (e) {
      record(op === 'read' ? 'read' : 'update', t0, e)
    }
  }
  const pace: PaceStats = { issued: 0, late: 0 }
  try {
    for (let slice = 0; slice < slices.count; slice++) {
      await slices.before()
      const cpu0 = totalCpu(opts.nodePids ?? [])
      sliceStarted = performance.now()
      working = true
      const until = sliceStarted + (opts.seconds * 1000) / slices.count
      await paced({ concurrency: opts.concurrency, ...(opts.rate === undefined ? {} : { rate: opts.rate }) }, until, one, pace)
      working = false
      workSeconds += (performance.now() - sliceStarted) / 1000
      const cpu1 = totalCpu(opts.nodePids ?? [])
      cpuSeconds = cpu0 === null || cpu1 === null || cpuSeconds === null ? null : cpuSeconds + (cpu1 - cpu0)
    }
  } finally {
    clearInterval(ticker)
  }
  const seconds = workSeconds
  if (!opts.nodePids) cpuSeconds = null
  if (opts.workload !== 'update') return { seconds, ops, cpuSeconds, pace }
  return { seconds, ops, cpuSeconds, pace, increments: { acknowledged, readBack: await readBackCounters(counters, opts.records) } }
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
