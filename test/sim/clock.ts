/**
 * Virtual time for the simulation, handed to the SDK and the engines as their
 * `time` option (core's Time), so they run on simulated time with no global
 * replaced. Nothing then happens on its own: `run` drains the microtask queue (by
 * yielding one real macrotask), fires the next virtual event, and repeats,
 * so a run is a deterministic function of the seed.
 */

import type { Time } from '@kvorum/core'

/** A fixed epoch, so stored timestamps are the same on every replay. */
const EPOCH_MS = 1_700_000_000_000

/** The run could not finish: deadlock, or a bound on steps or virtual time was hit. */
export class SimStallError extends Error {}

/** A scheduled callback; doubles as the Timeout/Immediate handle user code holds. */
class Timer {
  cancelled = false
  constructor(
    readonly seq: number,
    public at: number,
    readonly fn: () => void,
    readonly intervalMs: number | null,
  ) {}
  ref(): this {
    return this
  }
  unref(): this {
    return this
  }
  hasRef(): boolean {
    return true
  }
  [Symbol.toPrimitive](): number {
    return this.seq
  }
}

/** Ordered by (due time, scheduling order): a binary min-heap with lazy cancellation. */
class TimerHeap {
  private readonly items: Timer[] = []
  get size(): number {
    return this.items.length
  }
  private less(i: number, j: number): boolean {
    const a = this.items[i] as Timer
    const b = this.items[j] as Timer
    return a.at < b.at || (a.at === b.at && a.seq < b.seq)
  }
  private swap(i: number, j: number): void {
    const t = this.items[i] as Timer
    this.items[i] = this.items[j] as Timer
    this.items[j] = t
  }
  push(t: Timer): void {
    this.items.push(t)
    for (let i = this.items.length - 1; i > 0; ) {
      const p = (i - 1) >> 1
      if (!this.less(i, p)) break
      this.swap(i, p)
      i = p
    }
  }
  /** The earliest live timer, dropping cancelled ones on the way. */
  peek(): Timer | undefined {
    while (this.items.length > 0 && (this.items[0] as Timer).cancelled) this.pop()
    return this.items[0]
  }
  pop(): Timer | undefined {
    const top = this.items[0]
    const last = this.items.pop()
    if (this.items.length > 0 && last) {
      this.items[0] = last
      for (let i = 0; ; ) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < this.items.length && this.less(l, m)) m = l
        if (r < this.items.length && this.less(r, m)) m = r
        if (m === i) break
        this.swap(i, m)
        i = m
      }
    }
    return top
  }
}

/** Limits of one `run`: every simulation loop is bounded in count and in virtual time. */
export interface RunLimits {
  /** Give up when virtual time would pass this, ms since the clock's start. */
  readonly untilMs: number
  /** Give up after this many fired events. */
  readonly maxSteps: number
}

export class VirtualClock {
  /** Virtual ms since the start of the run. */
  now = 0
  /** Events fired so far. */
  steps = 0
  /** Exceptions thrown by timer callbacks: in a real process each would be a crash. */
  readonly uncaught: unknown[] = []
  private seq = 0
  private readonly timers = new TimerHeap()
  private immediates: Timer[] = []
  /** Immediates of the current check phase; ones queued meanwhile wait for the next phase, as in Node. */
  private phase: Timer[] = []

  /** Wall-clock ms on the virtual timeline. */
  readonly dateNow = (): number => EPOCH_MS + Math.floor(this.now)

  /** This clock as the SDK's and the engines' `time` option. */
  readonly time: Time = {
    now: this.dateNow,
    monotonicMs: () => this.now,
    setTimeout: (fn, ms) => this.setTimeout(fn, ms),
    clearTimeout: (handle) => this.clear(handle),
    setImmediate: (fn) => {
      this.setImmediate(fn)
    },
  }

  setTimeout = (fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]): Timer => this.schedule(fn, ms, args, null)
  setInterval = (fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]): Timer => this.schedule(fn, ms, args, Math.max(1, Number(ms) || 1))
  setImmediate = (fn: (...args: unknown[]) => void, ...args: unknown[]): Timer => {
    const t = new Timer(++this.seq, this.now, () => fn(...args), null)
    this.immediates.push(t)
    return t
  }
  clear = (t: unknown): void => {
    if (t instanceof Timer) t.cancelled = true
  }

  private schedule(fn: (...args: unknown[]) => void, ms: number | undefined, args: unknown[], intervalMs: number | null): Timer {
    // Node runs a timer of 0 (or a bad delay) after 1 ms.
    const delay = Number.isFinite(ms) && (ms as number) >= 1 ? (ms as number) : 1
    const t = new Timer(++this.seq, this.now + delay, () => fn(...args), intervalMs)
    this.timers.push(t)
    return t
  }

  /** A promise that resolves after `ms` of virtual time. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.setTimeout(() => resolve(), ms))
  }

  /** The next event in Node's order: the current check phase, expired timers, new immediates, then the next timer. */
  private next(): Timer | undefined {
    for (;;) {
      const queued = this.phase.shift()
      if (queued) {
        if (queued.cancelled) continue
        return queued
      }
      const due = this.timers.peek()
      if (due && due.at <= this.now) return this.timers.pop()
      if (this.immediates.length > 0) {
        this.phase = this.immediates
        this.immediates = []
        continue
      }
      if (!due) return undefined
      this.now = due.at
      return this.timers.pop()
    }
  }

  private fire(t: Timer): void {
    this.steps++
    if (t.intervalMs !== null) {
      t.at = this.now + t.intervalMs
      this.timers.push(t)
    }
    try {
      t.fn()
    } catch (e) {
      this.uncaught.push(e)
    }
  }

  /** Let every pending microtask (and everything it chains) run: one real macrotask turn. */
  private drain(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve))
  }

  /** Fire virtual events until `work` settles; its value, or its error. */
  async run<T>(work: Promise<T>, limits: RunLimits): Promise<T> {
    // Settled by callbacks the type checker cannot follow, hence a holder object.
    const state: { outcome?: { ok: true; value: T } | { ok: false; error: unknown } } = {}
    work.then(
      (value) => (state.outcome = { ok: true, value }),
      (error: unknown) => (state.outcome = { ok: false, error }),
    )
    for (;;) {
      await this.drain()
      const outcome = state.outcome
      if (outcome) {
        if (outcome.ok) return outcome.value
        throw outcome.error
      }
      if (this.steps >= limits.maxSteps) throw new SimStallError(`step budget of ${limits.maxSteps} events spent at ${this.now} ms`)
      const t = this.next()
      if (!t) throw new SimStallError(`deadlock at ${this.now} ms: nothing is scheduled and the work has not finished`)
      if (t.at > limits.untilMs) throw new SimStallError(`virtual time limit of ${limits.untilMs} ms reached`)
      this.fire(t)
    }
  }

  /** Let `ms` of virtual time pass, firing whatever falls due. */
  advance(ms: number, limits: RunLimits): Promise<void> {
    return this.run(this.sleep(ms), limits)
  }
}
