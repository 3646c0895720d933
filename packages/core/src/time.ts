/**
 * Time and timers, passed into the SDK and the storage engine so that the
 * simulator can run the production program on virtual time without touching
 * a global. Production code reads the time and sets timers only through this.
 */
export interface Time {
  /**
   * Wall-clock time in ms since the epoch: stored in versions and compared across processes.
   * It may step either way (NTP), so nothing waits on it: only times meant as wall times read it.
   */
  now(): number
  /**
   * Monotonic time in ms since an arbitrary start; it never goes back. Every deadline, timeout,
   * backoff, rate limit and interval is measured on it, so a wall-clock step does not move them.
   */
  monotonicMs(): number
  /**
   * Call `fn` after `ms`. With `unref`, a pending timer does not keep the
   * process alive (background probes and sweeps).
   */
  setTimeout(fn: () => void, ms: number, unref?: boolean): TimerHandle
  clearTimeout(handle: TimerHandle | undefined): void
  /** Call `fn` once the current turn's I/O callbacks have run (batching a turn's work). */
  setImmediate(fn: () => void): void
}

/** What `Time.setTimeout` returns; only `Time.clearTimeout` looks inside. */
export type TimerHandle = { readonly __timer: unique symbol } | object

/** The real clock and timers of this process. */
export const realTime: Time = {
  now: () => Date.now(),
  monotonicMs: () => performance.now(),
  setTimeout(fn, ms, unref = false) {
    const t = setTimeout(fn, ms)
    if (unref) t.unref()
    return t
  },
  clearTimeout(handle) {
    if (handle !== undefined) clearTimeout(handle as NodeJS.Timeout)
  },
  setImmediate(fn) {
    setImmediate(fn)
  },
}

/** Sleep on a given clock. */
export function sleep(time: Time, ms: number): Promise<void> {
  return new Promise((resolve) => {
    time.setTimeout(resolve, ms)
  })
}
