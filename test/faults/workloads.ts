import { type GetResult, type ORSet, type Store, KvorumError, QuorumNotMetError, orSet } from '@kvorum/client'
import type { OpKind, Outcome } from '../support/history.js'
import type { Workload } from './protocol.js'

/** How one operation ended, as reported to the parent. */
export interface Completion {
  readonly outcome: Outcome
  readonly error?: string
  readonly observed?: readonly string[]
}

/** What a workload loop needs from its process. */
export interface LoopContext {
  readonly worker: number
  /** False once the loop must not start another operation (time, count or stop). */
  running(): boolean
  /** Report an operation as started; returns its id. */
  invoke(workload: Workload, kind: OpKind, key: string, value: string): number
  complete(op: number, completion: Completion): void
  /** A uniform random integer in [0, n). */
  random(n: number): number
  /** The cart to add to now: a few shared carts per epoch, so every cart stays small. */
  cart(): string
  /** The register to race on now: a few shared keys per epoch, so older keys rest and their tombstones get reaped. */
  registerKey(): string
  /** Pause between operations. */
  think(): Promise<void>
}

function codeOf(e: unknown): string {
  return e instanceof KvorumError ? e.code : `UNEXPECTED ${String((e as Error)?.stack ?? e)}`
}

/**
 * How a failed write ended. No primary took it: the SDK says quorum-not-met
 * with 0 acks, and it did not happen. Any later failure (timeout, too few
 * acks, indeterminate) leaves it stored somewhere: it may yet spread.
 */
export function writeFailure(e: unknown): Completion {
  if (e instanceof QuorumNotMetError && e.acknowledged === 0) return { outcome: 'fail', error: codeOf(e) }
  return { outcome: 'info', error: codeOf(e) }
}

/**
 * One add to a cart: read (the store's merge folds siblings), add, write
 * back with the read's context. The two steps of `Store.update`, taken apart
 * so that a failed read (nothing written) is told from a failed write.
 */
async function addOnce(store: Store<ORSet<string>>, cart: string, element: string): Promise<Completion> {
  let read: GetResult<ORSet<string>>
  try {
    read = await store.get(cart)
  } catch (e) {
    return { outcome: 'fail', error: codeOf(e) }
  }
  try {
    await store.put(cart, orSet.add(orSet.merge(read.values), element, element), { context: read.context })
    return { outcome: 'ok' }
  } catch (e) {
    return writeFailure(e)
  }
}

/** Set-add: every operation adds a unique element to a shared cart. */
export async function setAddLoop(ctx: LoopContext, store: Store<ORSet<string>>, workload: 'set' | 'lww', loop: number): Promise<void> {
  for (let i = 0; ctx.running(); i++) {
    const cart = ctx.cart()
    const element = `w${ctx.worker}.${loop}.${i}`
    const op = ctx.invoke(workload, 'add', cart, element)
    ctx.complete(op, await addOnce(store, cart, element))
    await ctx.think()
  }
}

/**
 * Delete races on shared registers: each operation reads a key, then either
 * deletes it or writes a new unique value over it (a re-create when it was
 * deleted), with the read's context. The values the read saw are reported:
 * the write covers exactly those, so none of them may come back once the
 * write is acknowledged.
 */
export async function registerLoop(ctx: LoopContext, store: Store<string>, loop: number): Promise<void> {
  for (let i = 0; ctx.running(); i++) {
    const key = ctx.registerKey()
    const kind: OpKind = ctx.random(2) === 0 ? 'delete' : 'put'
    const value = kind === 'put' ? `${key}=w${ctx.worker}.${loop}.${i}` : ''
    const op = ctx.invoke('register', kind, key, value)
    let read: GetResult<string>
    try {
      read = await store.get(key)
    } catch (e) {
      ctx.complete(op, { outcome: 'fail', error: codeOf(e) })
      await ctx.think()
      continue
    }
    const observed = read.values
    try {
      if (kind === 'delete') await store.delete(key, { context: read.context })
      else await store.put(key, value, { context: read.context })
      ctx.complete(op, { outcome: 'ok', observed })
    } catch (e) {
      ctx.complete(op, { ...writeFailure(e), observed })
    }
    await ctx.think()
  }
}
