import { EventEmitter } from 'node:events'
import type { Time, TimerHandle } from '@kvorum/core'

/** Options of the failure detector. */
export interface FailureDetectorOptions {
  /**
   * Consecutive timed-out requests that mark a node down. Default 2. A
   * transport failure (a refused or reset connection) marks it down at once.
   */
  readonly threshold?: number | undefined
  /** Pause between recovery probes of a down node, ms. Default 500. */
  readonly probeIntervalMs?: number | undefined
}

/** The defaults of FailureDetectorOptions. */
export const DETECTOR_DEFAULTS = { threshold: 2, probeIntervalMs: 500 } as const

interface NodeState {
  failures: number
  down: boolean
  probing: boolean
  lastError: string
  /** Monotonic ms when it was marked down. */
  downAt: number
}

/**
 * One detector per SDK process, shared by every store: a node whose
 * connection fails is down at once, one that times out `threshold` requests
 * in a row is down too; down nodes are skipped without
 * waiting for a timeout and probed in the background until they answer.
 * Emits `down` (node id, error message, error code or undefined) and `up`
 * (node id, ms it was down).
 */
export class FailureDetector extends EventEmitter {
  private readonly nodes = new Map<string, NodeState>()
  private readonly threshold: number
  private readonly probeIntervalMs: number
  private readonly timers = new Set<TimerHandle>()
  private stopped = false

  constructor(
    private readonly probe: (node: string) => Promise<void>,
    private readonly time: Time,
    options: FailureDetectorOptions = {},
  ) {
    super()
    this.threshold = options.threshold ?? DETECTOR_DEFAULTS.threshold
    this.probeIntervalMs = options.probeIntervalMs ?? DETECTOR_DEFAULTS.probeIntervalMs
  }

  private state(node: string): NodeState {
    let s = this.nodes.get(node)
    if (!s) {
      s = { failures: 0, down: false, probing: false, lastError: '', downAt: 0 }
      this.nodes.set(node, s)
    }
    return s
  }

  isUp(node: string): boolean {
    return !this.state(node).down
  }

  /** A request to the node succeeded. */
  success(node: string): void {
    const s = this.state(node)
    s.failures = 0
    if (s.down) {
      s.down = false
      this.emit('up', node, this.time.monotonicMs() - s.downAt)
    }
  }

  /**
   * A request to the node failed at the transport level: `definite` (the connection failed) marks it
   * down at once, else a timeout counts toward the threshold. `code`: the failure's error code, for the event.
   */
  failure(node: string, error: string, definite = false, code?: string): void {
    const s = this.state(node)
    s.failures++
    s.lastError = error
    if (!s.down && (definite || s.failures >= this.threshold)) {
      s.down = true
      s.downAt = this.time.monotonicMs()
      this.emit('down', node, error, code)
      this.startProbing(node)
    }
  }

  private startProbing(node: string): void {
    const s = this.state(node)
    if (s.probing || this.stopped) return
    s.probing = true
    const tick = () => {
      const timer = this.time.setTimeout(
        async () => {
          this.timers.delete(timer)
          if (this.stopped) return
          try {
            await this.probe(node)
            s.probing = false
            this.success(node)
          } catch (e) {
            s.lastError = (e as Error).message
            tick()
          }
        },
        this.probeIntervalMs,
        true,
      )
      this.timers.add(timer)
    }
    tick()
  }

  /** Every node's view: up or down, and the last error seen. */
  snapshot(): { node: string; up: boolean; lastError: string }[] {
    return [...this.nodes].map(([node, s]) => ({ node, up: !s.down, lastError: s.lastError }))
  }

  stop(): void {
    this.stopped = true
    for (const t of this.timers) this.time.clearTimeout(t)
    this.timers.clear()
  }
}
