/**
 * How the benchmark issues operations: closed loop (a fixed number of workers,
 * each starting its next operation when the last one ends), or open loop (a
 * fixed schedule of `rate` operations a second, whatever the answers do).
 *
 * A closed loop slows down with the system it measures, and so hides the
 * operations that would have waited ("coordinated omission"). The open loop
 * measures each operation from the moment the schedule says it should have
 * started: an operation that starts late because the process was busy, or
 * because the in-flight cap was reached, carries that wait in its latency.
 */

/** Open loop: most operations in flight at once. Those due beyond it start late, and count the wait. */
export const MAX_OUTSTANDING = 4096

/** Longest sleep between two looks at the schedule, ms. */
const TICK_MS = 1

export interface Pace {
  /** Closed loop: the number of workers. */
  readonly concurrency: number
  /** Open loop at this many operations a second; absent for a closed loop. */
  readonly rate?: number
}

/** What the loop saw: operations issued, those that started over 1 ms after their intended time, and the scheduled seconds. */
export interface PaceStats {
  issued: number
  late: number
  /** Seconds the schedule ran (the answers of the last operations may come after). */
  scheduledS: number
}

/**
 * Run `op` until `until` (a performance.now() time), paced by `pace`. `op`
 * gets the time to measure its latency from (its start, or in an open loop
 * its intended start) and a worker id no other operation in flight holds
 * (an actor in a counter, say): below `concurrency` in a closed loop, below
 * MAX_OUTSTANDING in an open one, the smallest free ones reused first.
 */
export async function paced(
  pace: Pace,
  until: number,
  op: (t0: number, worker: number) => Promise<void>,
  stats: PaceStats = { issued: 0, late: 0, scheduledS: 0 },
): Promise<PaceStats> {
  stats.scheduledS += Math.max(0, until - performance.now()) / 1000
  if (pace.rate === undefined) {
    await Promise.all(
      Array.from({ length: pace.concurrency }, async (_, w) => {
        while (performance.now() < until) {
          stats.issued++
          await op(performance.now(), w)
        }
      }),
    )
    return stats
  }
  const interval = 1000 / pace.rate
  const start = performance.now()
  const running = new Set<Promise<void>>()
  const free = Array.from({ length: MAX_OUTSTANDING }, (_, i) => MAX_OUTSTANDING - 1 - i)
  let issued = 0
  for (;;) {
    const now = performance.now()
    if (now >= until) break
    while (running.size < MAX_OUTSTANDING) {
      const intended = start + issued * interval
      if (intended > now || intended >= until) break
      if (now - intended > 1) stats.late++
      const worker = free.pop() as number
      const p: Promise<void> = op(intended, worker).finally(() => {
        running.delete(p)
        free.push(worker)
      })
      running.add(p)
      issued++
      stats.issued++
    }
    const wait = Math.min(TICK_MS, start + issued * interval - performance.now())
    await new Promise((r) => setTimeout(r, Math.max(0, wait)))
  }
  await Promise.all(running)
  return stats
}
