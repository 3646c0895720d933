import type { MoveStage } from '@kvorum/core'
import type { Runtime } from './runtime.js'

/** Options of a rebalance (and of an abort). Every default is in REBALANCE_DEFAULTS. */
export interface RebalanceOptions {
  /** Called at every phase and copy pass. */
  readonly onProgress?: ((progress: RebalanceProgress) => void) | undefined
  /**
   * After every node installed a version, wait this long for operations routed
   * under the older one to finish, ms. Default: the client's timeoutMs.
   */
  readonly drainMs?: number | undefined
  /** Wait in use-new before the leavers drop their rows, ms. Default 5,000. */
  readonly cleanupGraceMs?: number | undefined
  /** Longest wait for every node to install a version, ms. Default 60,000. */
  readonly barrierTimeoutMs?: number | undefined
  /** Nodes known dead (a removal with --dead): not waited for. Default none. */
  readonly dead?: readonly string[] | undefined
  /**
   * Copy passes per step before giving up (the command can be run again), and
   * at least barrierTimeoutMs of retrying when a replica does not answer. Default 10.
   */
  readonly maxCopyPasses?: number | undefined
  /** Keys copied per second at most, so foreground traffic keeps its latency. Default 10,000. */
  readonly maxKeysPerSecond?: number | undefined
  /**
   * Stops the driver between steps: the call rejects at once with
   * KV_ABORTED, and no further version is installed. The plan stays in the
   * definition; run rebalance again to resume it, or abortRebalance. Default none.
   */
  readonly signal?: AbortSignal | undefined
}

/** The defaults of RebalanceOptions. */
export const REBALANCE_DEFAULTS = { cleanupGraceMs: 5000, barrierTimeoutMs: 60_000, maxCopyPasses: 10, maxKeysPerSecond: 10_000 } as const

/** Where a rebalance is, for a progress display. */
export interface RebalanceProgress {
  readonly planId: string
  readonly version: number
  readonly step: number
  readonly steps: number
  readonly stage: MoveStage | 'done'
  readonly phase: 'install' | 'drain' | 'copy' | 'grace' | 'done'
  /** Nodes that have not installed the version yet (with why). */
  readonly waitingFor: readonly string[]
  /** Of this step's copy: keys written to replicas that lacked them, and the bytes exchanged. */
  readonly keysCopied: number
  readonly bytesCopied: number
  /** Hints kept for nodes that leave this step. */
  readonly hintBacklog: number
  /** Of this step's copy pass: partitions compared so far, and in all (0 outside the copy). */
  readonly partitionsCopied: number
  readonly partitionsToCopy: number
  /** Since this step's copy began, ms (0 outside the copy): with the partitions, a rate and an ETA. */
  readonly copyElapsedMs: number
  /** Keys/s the copy may send now: maxKeysPerSecond, or less while nodes answer slowly (it backs off). */
  readonly copyRateLimit: number
  readonly elapsedMs: number
}

/** RebalanceOptions with every default filled in. */
export interface Settings {
  readonly drainMs: number
  readonly cleanupGraceMs: number
  readonly barrierTimeoutMs: number
  readonly dead: ReadonlySet<string>
  readonly maxCopyPasses: number
  readonly maxKeysPerSecond: number
}

export function settingsOf(rt: Runtime, options: RebalanceOptions): Settings {
  return {
    drainMs: options.drainMs ?? rt.settings.timeoutMs,
    cleanupGraceMs: options.cleanupGraceMs ?? REBALANCE_DEFAULTS.cleanupGraceMs,
    barrierTimeoutMs: options.barrierTimeoutMs ?? REBALANCE_DEFAULTS.barrierTimeoutMs,
    dead: new Set(options.dead ?? []),
    maxCopyPasses: options.maxCopyPasses ?? REBALANCE_DEFAULTS.maxCopyPasses,
    maxKeysPerSecond: options.maxKeysPerSecond ?? REBALANCE_DEFAULTS.maxKeysPerSecond,
  }
}
