import { type VersionVector, KvorumError, decodeContext } from '@kvorum/core'
import { type Kvorum, type ORSet, type Store, orSet } from '@kvorum/client'
import type { VirtualClock } from './clock.js'
import type { SeedConfig } from './config.js'
import { History } from '../support/history.js'
import type { Random } from '../support/random.js'
import type { Trace } from './trace.js'

/** A cart is a set of tags: each add puts in one tag no other add uses. */
export type Cart = ORSet<string>
/** A document's value names the write that made it. */
export interface Doc {
  readonly id: string
}

/** An acknowledged delete, and the clock of what it read: every version under it must stay gone. */
export interface DeleteRecord {
  readonly key: string
  readonly by: string
  readonly covered: VersionVector
  /** The documents it read (their ids): a version carrying one of them again, under any dot, is the deleted value back. */
  readonly values: readonly string[]
}

/** The workload name of the cart adds in the operation history, which the set checker judges. */
export const CART_WORKLOAD = 'cart'

/** What the clients did and what was acknowledged to them. */
export class WorkloadLog {
  /** Every cart add, invoked and completed on virtual time. */
  readonly ops = new History()
  readonly deletes: DeleteRecord[] = []
  attempted = 0
  acknowledged = 0
  /** Failed operations by error code. */
  readonly errors = new Map<string, number>()
  /** Tombstones the repairs run during the faults reaped. */
  reapedDuringRun = 0
  /** Errors that are not KvorumErrors: the SDK threw something a caller cannot act on. */
  readonly bugs: string[] = []
}

interface Worker {
  readonly name: string
  readonly carts: Store<Cart>
  /** The same store with the OR-set merge: its reads write merged siblings back. */
  readonly mergingCarts: Store<Cart>
  readonly docs: Store<Doc>
  /** The last acknowledged value and context per cart, to write again without reading (as a session would). */
  readonly last: Map<string, { value: Cart; context: string }>
  seq: number
}

export interface WorkloadContext {
  readonly config: SeedConfig
  readonly clock: VirtualClock
  readonly trace: Trace
  readonly history: WorkloadLog
  /** Workers also overwrite documents with expiring values (the clock nemesis). Default false. */
  readonly expiring?: boolean
}

type Op = 'add' | 'create' | 'delete' | 'read' | 'repair' | 'expire'
const OPS: readonly Op[] = ['add', 'add', 'add', 'add', 'add', 'add', 'create', 'create', 'delete', 'delete', 'read', 'read']
/** With expiring writes: the same mix plus overwrites that expire (a separate list, so other seeds keep their draws). */
const EXPIRING_OPS: readonly Op[] = [...OPS, 'expire', 'expire']
/** Time to live of an expiring write, ms: from shorter than a think pause to longer than the run's faults. */
const TTL_RANGE_MS = [20, 3000] as const

async function addOp(w: Worker, key: string, tag: string, mode: string, ctx: WorkloadContext): Promise<void> {
  const last = w.last.get(key)
  let value: Cart
  let written: { context: string }
  if (mode === 'blind') {
    value = orSet.add(orSet.empty<string>(), tag, tag)
    written = await w.carts.put(key, value)
  } else if (mode === 'chain' && last) {
    value = orSet.add(last.value, tag, tag)
    written = await w.carts.put(key, value, { context: last.context })
  } else {
    const store = mode === 'merge' ? w.mergingCarts : w.carts
    const read = await store.get(key)
    value = orSet.add(orSet.merge(read.values), tag, tag)
    written = await w.carts.put(key, value, { context: read.context })
  }
  w.last.set(key, { value, context: written.context })
  ctx.trace.event(`${w.name} added ${tag} to ${key}`)
}

async function operate(w: Worker, rng: Random, kv: Kvorum, ctx: WorkloadContext, napped: boolean): Promise<void> {
  const { config, history, trace } = ctx
  // After a nap past the grace period, repairs can reap: run them often then.
  const op = rng.chance(napped ? 0.5 : 0.03) ? 'repair' : rng.pick(ctx.expiring ? EXPIRING_OPS : OPS)
  const seq = ++w.seq
  const id = `${w.name}.${seq}`
  history.attempted++
  let key = ''
  let adding = false
  try {
    if (op === 'add') {
      key = rng.pick(config.cartKeys)
      const mode = rng.pick(['read', 'read', 'merge', 'blind', 'chain', 'chain'])
      adding = true
      history.ops.invoke(w.name, seq, { workload: CART_WORKLOAD, kind: 'add', key, value: id, at: ctx.clock.now })
      trace.event(`${w.name} add ${id} to ${key} (${mode})`)
      await addOp(w, key, id, mode, ctx)
      history.ops.complete(w.name, seq, { outcome: 'ok', at: ctx.clock.now })
    } else if (op === 'create') {
      key = rng.pick(config.docKeys)
      trace.event(`${w.name} create ${key} = ${id}`)
      const context = rng.chance(0.5) ? (await w.docs.get(key)).context : undefined
      await w.docs.put(key, { id }, context === undefined ? {} : { context })
      trace.event(`${w.name} created ${key} = ${id}`)
    } else if (op === 'delete') {
      key = rng.pick(config.docKeys)
      trace.event(`${w.name} delete ${key}`)
      const read = await w.docs.get(key)
      await w.docs.delete(key, { context: config.mutant === 'blind-delete' ? '' : read.context })
      history.deletes.push({ key, by: id, covered: decodeContext(read.context), values: read.values.map((d) => d.id) })
      const covered = Object.entries(decodeContext(read.context))
        .map(([a, n]) => `${trace.name(a)}:${n}`)
        .join(' ')
      trace.event(`${w.name} deleted ${key} (it held ${read.values.map((d) => d.id).join(', ') || 'nothing'}; context ${covered})`)
    } else if (op === 'expire') {
      // An overwrite that expires: once it has, it must still cover what it overwrote (as a tombstone does).
      key = rng.pick(config.docKeys)
      const ttlMs = rng.range(...TTL_RANGE_MS)
      trace.event(`${w.name} expire ${key} = ${id} (ttl ${ttlMs} ms)`)
      const read = await w.docs.get(key)
      await w.docs.put(key, { id }, { context: config.mutant === 'blind-expire' ? '' : read.context, ttlMs })
      history.deletes.push({ key, by: `${id} (expiring)`, covered: decodeContext(read.context), values: read.values.map((d) => d.id) })
      trace.event(`${w.name} wrote ${key} = ${id}, expiring`)
    } else if (op === 'read') {
      key = rng.pick([...config.cartKeys, ...config.docKeys])
      const read = await (config.cartKeys.includes(key) ? w.carts : w.docs).get(key)
      trace.event(`${w.name} read ${key}: ${read.siblings} siblings`)
    } else {
      const report = await kv.repair()
      history.reapedDuringRun += report.tombstonesReaped
      trace.event(`${w.name} repair: ${report.keysRepaired} keys repaired, ${report.tombstonesReaped} reaped, ${report.partitionsSkipped} skipped`)
    }
    history.acknowledged++
  } catch (e) {
    const code = e instanceof KvorumError ? e.code : 'NOT_A_KVORUM_ERROR'
    if (adding) {
      // The failed write may or may not have applied (Jepsen's info): read again before the next add.
      history.ops.complete(w.name, seq, { outcome: 'info', error: code, at: ctx.clock.now })
      w.last.delete(key)
    }
    history.errors.set(code, (history.errors.get(code) ?? 0) + 1)
    if (!(e instanceof KvorumError)) history.bugs.push(`${op} ${key}: ${(e as Error)?.stack ?? String(e)}`)
    trace.event(`${w.name} ${op} ${key} ${id} failed: ${code}`)
  }
}

async function runWorker(w: Worker, rng: Random, kv: Kvorum, ctx: WorkloadContext): Promise<void> {
  for (let i = 0; i < ctx.config.opsPerWorker; i++) {
    const grace = ctx.config.store.tombstoneGraceMs ?? 0
    const nap = rng.chance(ctx.config.napChance) ? rng.range(grace, grace + 1000) : 0
    await ctx.clock.sleep(nap + rng.range(0, ctx.config.thinkMaxMs))
    await operate(w, rng, kv, ctx, nap > 0)
  }
}

/** Every client's workers, run concurrently until each has done its operations. */
export function runWorkload(clients: readonly Kvorum[], rng: Random, ctx: WorkloadContext): Promise<void> {
  const runs: Promise<void>[] = []
  clients.forEach((kv, c) => {
    if (ctx.config.handoffClients[c]) kv.startHandoff({ intervalMs: 300 })
    for (let i = 0; i < ctx.config.workersPerClient; i++) {
      const w: Worker = {
        name: `c${c + 1}w${i + 1}`,
        carts: kv.store<Cart>('sim', { codec: 'json' }),
        mergingCarts: kv.store<Cart>('sim', { codec: 'json', merge: orSet.merge }),
        docs: kv.store<Doc>('sim', { codec: 'json' }),
        last: new Map(),
        seq: 0,
      }
      runs.push(runWorker(w, rng.fork(), kv, ctx))
    }
  })
  return Promise.all(runs).then(() => undefined)
}
