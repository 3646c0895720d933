import type { OpKind, Outcome, Workload, WorkerEvent } from './protocol.js'

/** One operation as the client processes reported it; `pending` when it never completed. */
export interface OpRecord {
  readonly worker: number
  readonly op: number
  readonly workload: Workload
  readonly kind: OpKind
  readonly key: string
  readonly value: string
  readonly invokedAt: number
  completedAt: number | null
  outcome: Outcome | 'pending'
  error: string | null
  observed: readonly string[]
}

/** Every operation of a run, from every client process. */
export class History {
  private readonly ops = new Map<string, OpRecord>()
  /** Client processes that finished their loops, with how many operations each started. */
  readonly done = new Map<number, number>()

  /** Feed one event from a client process. */
  record(worker: number, event: WorkerEvent): void {
    if (event.type === 'done') {
      this.done.set(worker, event.ops)
      return
    }
    if (event.type === 'invoke') {
      this.ops.set(`${worker}:${event.op}`, {
        worker, op: event.op, workload: event.workload, kind: event.kind, key: event.key, value: event.value,
        invokedAt: event.at, completedAt: null, outcome: 'pending', error: null, observed: [],
      })
      return
    }
    if (event.type !== 'complete') return
    const rec = this.ops.get(`${worker}:${event.op}`)
    if (!rec) throw new Error(`assertion failed: worker ${worker} completed op ${event.op} it never invoked`)
    rec.completedAt = event.at
    rec.outcome = event.outcome
    rec.error = event.error ?? null
    rec.observed = event.observed ?? []
  }

  of(workload: Workload): OpRecord[] {
    return [...this.ops.values()].filter((o) => o.workload === workload)
  }

  /** Keys a workload touched. */
  keys(workload: Workload): string[] {
    return [...new Set(this.of(workload).map((o) => o.key))].sort()
  }

  /** Error codes of operations that were not acknowledged, with counts. */
  errors(workload: Workload): Record<string, number> {
    const out: Record<string, number> = {}
    for (const o of this.of(workload)) {
      if (o.outcome === 'ok') continue
      const code = `${o.outcome}:${(o.error ?? 'none').split('\n')[0]}`
      out[code] = (out[code] ?? 0) + 1
    }
    return out
  }
}
