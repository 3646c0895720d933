/**
 * The messages between the fault-suite parent and its client processes (over
 * the IPC channel of `child_process.spawn`), and the names of the stores the
 * workloads use.
 */
import type { OpKind, Outcome } from '../support/history.js'

/** Stores of a fault-suite cluster. */
export const STORES = {
  /** Shopping carts with the OR-set merge, siblings kept: nothing acknowledged may be lost. */
  carts: 'carts',
  /** The same carts on a last-writer-wins store: the control, lossy under concurrency by design. */
  lww: 'carts-lww',
  /** Registers that are deleted and re-created while replicas are down. */
  registers: 'registers',
} as const

/** Which workload an operation belongs to. */
export type Workload = 'set' | 'lww' | 'register'

export const WORKLOADS: readonly Workload[] = ['set', 'lww', 'register']

/** What the parent tells a client process to do. */
export interface WorkerConfig {
  readonly worker: number
  readonly token: string
  /** Node id to the URL of this process's proxy in front of that node. */
  readonly nodes: Readonly<Record<string, string>>
  /** Wall-clock start of the scenario, so every process picks the same carts at the same time. */
  readonly startedAt: number
  /** The workload stops starting operations after this long, ms. */
  readonly durationMs: number
  /** The workload stops after this many operations in all. */
  readonly maxOps: number
  readonly seed: number
  /** The SDK's deadline per operation and per node request, ms. */
  readonly timeoutMs: number
  readonly requestTimeoutMs: number
  /** Concurrent loops per workload. */
  readonly loops: Readonly<Record<Workload, number>>
  /** Shared carts per epoch, and how long an epoch lasts: bounds the size of a cart. */
  readonly cartsPerEpoch: number
  readonly epochMs: number
  /** Shared register keys per epoch, and how long a register epoch lasts: older keys are left alone, so their tombstones age and get reaped. */
  readonly registerKeys: number
  readonly registerEpochMs: number
  /** Pause between the operations of one loop, ms, so the machine is not saturated. */
  readonly thinkMs: number
  /** The SDK's poll for a newer definition, ms; 0 turns it off (a held client then learns of a change only from a node). */
  readonly pollIntervalMs?: number
}

/** What a client process's SDK held at one moment: the definition version and how often it had switched definitions. */
export interface SdkState {
  readonly version: number
  readonly refreshes: number
  readonly at: number
}

/** What a client process reports. */
export type WorkerEvent =
  | { readonly type: 'ready' }
  | {
      readonly type: 'invoke'
      readonly op: number
      readonly workload: Workload
      readonly kind: OpKind
      readonly key: string
      /** The element added or value put; empty for a delete. */
      readonly value: string
      readonly at: number
    }
  | {
      readonly type: 'complete'
      readonly op: number
      readonly outcome: Outcome
      /** Error code when not ok. */
      readonly error?: string
      /** For a delete: the values its read saw, which its tombstone covers. */
      readonly observed?: readonly string[]
      readonly at: number
    }
  /** The SDK bootstrapped: the definition it started with. */
  | ({ readonly type: 'connected'; readonly pid: number } & SdkState)
  /** Every loop is parked (after a `hold`): no operation in flight, none started until `release`. */
  | ({ readonly type: 'held' } & SdkState)
  /** Released: the definition it holds as it starts again, before any request. */
  | ({ readonly type: 'released' } & SdkState)
  | ({ readonly type: 'done'; readonly ops: number; readonly nodes: readonly string[] } & SdkState)

/** What the parent sends. */
export type ParentMessage =
  | { readonly type: 'start'; readonly config: WorkerConfig }
  | { readonly type: 'stop' }
  /** Park every loop before its next operation, and stay idle until `release`. */
  | { readonly type: 'hold' }
  | { readonly type: 'release' }
