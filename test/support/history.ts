/** How an operation ended, as Jepsen has it: ok (acknowledged), fail (did not happen), info (may or may not have). */
export type Outcome = 'ok' | 'fail' | 'info'

/** What an operation did: add an element to a set, put a register's value, delete a register. */
export type OpKind = 'add' | 'put' | 'delete'

/** What an operation was, when it was invoked. */
export interface Invocation {
  /** Which workload the operation belongs to (the fault suite's 'set', the simulation's 'cart'). */
  readonly workload: string
  readonly kind: OpKind
  readonly key: string
  /** The element added or value put; empty for a delete. */
  readonly value: string
  readonly at: number
}

/** How an operation ended. */
export interface Completion {
  readonly outcome: Outcome
  /** Error code when not ok. */
  readonly error?: string
  /** For a write: the values its read saw, which its context covers. */
  readonly observed?: readonly string[]
  readonly at: number
}

/** One operation as a client reported it; `pending` when it never completed. */
export interface OpRecord {
  /** Who ran it: a fault-suite process number, a simulated worker's name. */
  readonly worker: string
  /** The operation's number within its worker. */
  readonly op: number
  readonly workload: string
  readonly kind: OpKind
  readonly key: string
  readonly value: string
  readonly invokedAt: number
  completedAt: number | null
  outcome: Outcome | 'pending'
  error: string | null
  observed: readonly string[]
}

/** Every operation of a run, from every client: what the set and register checkers judge. */
export class History {
  private readonly ops = new Map<string, OpRecord>()

  /** Record that `worker` started its operation number `op`. */
  invoke(worker: string, op: number, inv: Invocation): void {
    const id = `${worker}:${op}`
    if (this.ops.has(id)) throw new Error(`assertion failed: worker ${worker} invoked op ${op} twice`)
    this.ops.set(id, {
      worker,
      op,
      workload: inv.workload,
      kind: inv.kind,
      key: inv.key,
      value: inv.value,
      invokedAt: inv.at,
      completedAt: null,
      outcome: 'pending',
      error: null,
      observed: [],
    })
  }

  /** Record how `worker`'s operation number `op` ended. */
  complete(worker: string, op: number, c: Completion): void {
    const rec = this.ops.get(`${worker}:${op}`)
    if (!rec) throw new Error(`assertion failed: worker ${worker} completed op ${op} it never invoked`)
    rec.completedAt = c.at
    rec.outcome = c.outcome
    rec.error = c.error ?? null
    rec.observed = c.observed ?? []
  }

  /** The operations of one workload, in the order they were invoked. */
  of(workload: string): OpRecord[] {
    return [...this.ops.values()].filter((o) => o.workload === workload)
  }

  /** Keys a workload touched. */
  keys(workload: string): string[] {
    return [...new Set(this.of(workload).map((o) => o.key))].sort()
  }

  /** Error codes of operations that were not acknowledged, with counts. */
  errors(workload: string): Record<string, number> {
    const out: Record<string, number> = {}
    for (const o of this.of(workload)) {
      if (o.outcome === 'ok') continue
      const code = `${o.outcome}:${(o.error ?? 'none').split('\n')[0]}`
      out[code] = (out[code] ?? 0) + 1
    }
    return out
  }
}
