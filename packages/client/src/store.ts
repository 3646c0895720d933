import {
  type KeySet,
  type SiblingSet,
  type StoreDef,
  type VersionVector,
  CLUSTER_LIMITS,
  ClientClosedError,
  DecodeFailedError,
  InvalidInputError,
  KvorumError,
  LIMITS,
  bytesEqual,
  decodeContext,
  encodeContext,
  findStore,
  goneFromMs,
  keyBytes,
  setContext,
  showKey,
  toHex,
  unexpired,
} from '@kvorum/core'
import { type CallScope, type RetryOp, checkAborted, untilAborted, withRetry } from './call.js'
import { type Codec, type CodecName, type NamedCodec, codecFor } from './codecs.js'
import { type Entry, type ListOptions, type ListSource, type Listing, listEntries, listKeys, listVersions } from './listing.js'
import { type DeleteItem, type KeyResult, type PutItem, checkCount, checkDistinct, settle } from './many.js'
import { type ConditionalPut, type PutConditions, type TtlOption, checkTtl, conditionalPut, ttlFor } from './put-conditions.js'
import { readRound } from './read-round.js'
import { MAX_RESTORE_ITEMS, restoreSets } from './restore.js'
import { UpdateCombiner, type UpdateResult } from './update-combiner.js'
import type { Runtime } from './runtime.js'
import { type Stored, type WriteOutcome, writeRound } from './write-round.js'

/** Options of a store handle besides its codec (not the store definition's settings); quorum fields override the definition. */
export interface HandleSettings<T> {
  /** Resolves siblings into one value; `get` then writes it back so they collapse. Default none: siblings are returned. */
  readonly merge?: ((values: T[]) => T) | undefined
  /** Replies a read waits for. Default the store definition's. */
  readonly r?: number | undefined
  /** Acknowledgements a write waits for. Default the store definition's. */
  readonly w?: number | undefined
  /** Of the r replies, how many must come from primaries. Default the store definition's. */
  readonly pr?: number | undefined
  /** Of the w acknowledgements, how many must come from primaries (hints do not count). Default the store definition's. */
  readonly pw?: number | undefined
  /** Deadline of each operation, ms. Default the client's (3000). */
  readonly timeoutMs?: number | undefined
}

/** Options of a store handle: `kv.store(name, options)` ties the codec to the handle's value type. */
export interface StoreOptions<T> extends HandleSettings<T> {
  /** `bytes` (default, Uint8Array values), `utf8` (strings), `json` (JSON values), or your own codec. */
  readonly codec?: CodecName | Codec<T> | undefined
}

/** Per-call options; each overrides the store handle's. */
export interface CallOptions {
  readonly r?: number | undefined
  readonly w?: number | undefined
  readonly pr?: number | undefined
  readonly pw?: number | undefined
  /** Deadline of the whole call (a read before a delete or an update, and retries, included), ms. */
  readonly timeoutMs?: number | undefined
  /**
   * Aborts the call: it rejects at once with KV_ABORTED, and nothing more is
   * sent for it. A write already sent may still land (as after a timeout).
   * Default none.
   */
  readonly signal?: AbortSignal | undefined
}

export interface WriteOptions extends CallOptions {
  /** The context a get returned; without one a put is a blind write that becomes a sibling of what is there. */
  readonly context?: string | undefined
}

/** A put's options: a context (or a best-effort condition instead) and a time to live. */
export interface PutOptions extends WriteOptions, TtlOption, PutConditions {}

/** What a read returns. */
export interface GetResult<T> {
  /** False when the key is absent, deleted or expired. */
  readonly found: boolean
  /** One value per sibling (identical values once); with a merge function, the one merged value. */
  readonly values: T[]
  /** Pass to put/delete so the write supersedes what was read. */
  readonly context: string
  /** Siblings the replicas held that have not expired (before any merge). */
  readonly siblings: number
}

type Key = string | Uint8Array

/** What a put writes with besides its value: a context, or a condition that reads one; and its ttl (undefined: the store's). */
interface PutPlan {
  readonly context: VersionVector
  readonly condition: ConditionalPut | null
  readonly ttlMs: number | undefined
}

function isKey<K extends Key>(item: K | DeleteItem<K>): item is K {
  return typeof item === 'string' || item instanceof Uint8Array
}

/** A typed handle on one store. */
export class Store<T> {
  private readonly codec: NamedCodec<T>
  /** Concurrent updates of one key through this handle, combined into one read and one write. */
  private readonly combiner: UpdateCombiner<T>

  constructor(
    private readonly rt: Runtime,
    readonly name: string,
    private readonly options: StoreOptions<T>,
  ) {
    this.codec = codecFor(options.codec)
    this.combiner = new UpdateCombiner<T>((key, apply) => this.updateGroup(key, apply))
  }

  private def(): StoreDef {
    return findStore(this.rt.view.cluster, this.name)
  }

  /** Start a call: refuse it on a closed client or an aborted signal, and fix its deadline. */
  private begin(call: CallOptions, what: string): CallScope {
    if (this.rt.state.closed) throw new ClientClosedError()
    const timeoutMs = call.timeoutMs ?? this.options.timeoutMs ?? this.rt.settings.timeoutMs
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new InvalidInputError(`timeoutMs must be a positive number of ms, got ${timeoutMs}`)
    checkAborted(call.signal, what)
    return { deadline: this.rt.time.monotonicMs() + timeoutMs, timeoutMs, signal: call.signal }
  }

  private quorum(def: StoreDef, call: CallOptions, scope: CallScope) {
    const pick = (field: 'r' | 'w' | 'pr' | 'pw', min: number, max: number) => {
      const v = call[field] ?? this.options[field] ?? def[field]
      if (!Number.isInteger(v) || v < min || v > max)
        throw new InvalidInputError(`${field} must be an integer ${min}..${max} for store ${def.name} (n=${def.n}), got ${v}`)
      return v
    }
    const r = pick('r', 1, def.n)
    const w = pick('w', 1, def.n)
    return { r, w, pr: pick('pr', 0, r), pw: pick('pw', 0, w), ...scope }
  }

  private key(key: Key): Uint8Array {
    const bytes = keyBytes(key)
    if (bytes.length < 1 || bytes.length > LIMITS.maxKeyBytes) throw new InvalidInputError(`key must be 1..${LIMITS.maxKeyBytes} bytes, got ${bytes.length}`)
    return bytes
  }

  /** The app's value as bytes: a value the codec refuses, or one over the store's limit, is invalid input naming the key. */
  private encode(key: Uint8Array, value: T): Uint8Array {
    let bytes: Uint8Array
    try {
      bytes = this.codec.codec.encode(value)
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e)
      throw new InvalidInputError(`the value for key ${showKey(key)} of store ${this.name} does not encode with the ${this.codec.name} codec: ${why}`)
    }
    const def = this.def()
    if (bytes.length > def.maxValueBytes)
      throw new InvalidInputError(`value of ${bytes.length} bytes for key ${showKey(key)} is over store ${def.name}'s limit of ${def.maxValueBytes}`)
    return bytes
  }

  /** Run one public operation: refresh-and-retry on stale metadata (same deadline), and record its latency. */
  private async timed<R>(op: string, run: () => Promise<R>): Promise<R> {
    const started = this.rt.time.monotonicMs()
    try {
      const out = await this.rt.view.withRefresh(run)
      this.rt.metrics.observe(this.name, op, this.rt.time.monotonicMs() - started, false)
      return out
    } catch (e) {
      this.rt.metrics.observe(this.name, op, this.rt.time.monotonicMs() - started, true, e)
      throw e
    }
  }

  /** One call's attempts under the client's retry policy (none by default). */
  private retried<R>(op: RetryOp, key: Key, scope: CallScope, attempt: () => Promise<R>): Promise<R> {
    return withRetry(this.rt.settings.retry, this.rt.time, scope, { op, store: this.name, key }, attempt)
  }

  private decodeSet(key: Uint8Array, set: SiblingSet): T[] {
    const distinct: Uint8Array[] = []
    for (const v of set) if (v.value && !distinct.some((d) => bytesEqual(d, v.value as Uint8Array))) distinct.push(v.value)
    try {
      return distinct.map((b) => this.codec.codec.decode(b))
    } catch (e) {
      throw DecodeFailedError.forKey(this.name, showKey(key), this.codec.name, e)
    }
  }

  private noteSiblings(count: number): void {
    const m = this.rt.metrics
    if (count > m.siblingsSeenMax) m.siblingsSeenMax = count
    if (count >= LIMITS.warnSiblings) m.siblingWarnings++
  }

  /** Read a key: its values (siblings) and the context to write back with. */
  async get(key: Key, call: CallOptions = {}): Promise<GetResult<T>> {
    const scope = this.begin(call, 'get')
    const bytes = this.key(key)
    return untilAborted(
      this.retried('get', key, scope, () => this.read(bytes, call, scope)),
      scope.signal,
      `get of ${showKey(bytes)}`,
    )
  }

  private read(key: Uint8Array, call: CallOptions, scope: CallScope): Promise<GetResult<T>> {
    return this.timed('get', async () => {
      const def = this.def()
      const { set } = await readRound(this.rt, def, key, this.quorum(def, call, scope))
      return this.resolve(def, key, set, call, scope)
    })
  }

  /** With a merge function, collapse siblings into one value and write it back (within the read's deadline, unless aborted). */
  private async resolve(def: StoreDef, key: Uint8Array, all: SiblingSet, call: CallOptions, scope: CallScope): Promise<GetResult<T>> {
    // Expired versions read as absent, but the context keeps them, so a write supersedes them (as tombstones).
    const set = unexpired(all, this.rt.time.now())
    this.noteSiblings(set.length)
    const values = this.decodeSet(key, set)
    const context = encodeContext(setContext(all))
    const merge = this.options.merge
    if (!merge || values.length < 2) return { found: values.length > 0, values, context, siblings: set.length }
    const merged = merge(values)
    if (scope.signal?.aborted) return { found: true, values: [merged], context, siblings: set.length }
    try {
      // The merged value lives as long as the longest-lived value it merges (for ever, if one never expires),
      // as this reader's clock sees it (the node stamps its expiry from its own clock plus that ttl).
      const gone = goneFromMs(set, 0)
      const ttlMs = gone === null ? undefined : Math.min(Math.max(1, gone - this.rt.time.now()), CLUSTER_LIMITS.maxTtlMs)
      const written = await this.write(def, key, this.encode(key, merged), setContext(all), call, scope, ttlMs)
      // Writers racing this write-back may have left siblings beside it: fold them in too (the
      // unexpired ones: an expired sibling the reads missed reads as absent here as well),
      // and hand back a context that covers exactly what the returned value holds.
      const live = unexpired(written.siblings, this.rt.time.now())
      const others = live.length > 1 ? this.decodeSet(key, live) : []
      if (others.length > 1) return { found: true, values: [merge(others)], context: encodeContext(setContext(written.siblings)), siblings: live.length }
      return { found: true, values: [merged], context: encodeContext(written.clock), siblings: set.length }
    } catch (e) {
      // The merged value is still right; the siblings stay until the next successful merge.
      if (!(e instanceof KvorumError)) throw e
      return { found: true, values: [merged], context, siblings: set.length }
    }
  }

  private write(
    def: StoreDef,
    key: Uint8Array,
    value: Uint8Array | null,
    context: VersionVector,
    call: CallOptions,
    scope: CallScope,
    ttlMs?: number,
    stored?: Stored,
  ): Promise<WriteOutcome> {
    checkAborted(scope.signal, `${value ? 'put' : 'delete'} of ${showKey(key)}`)
    return writeRound(this.rt, def, key, value, context, this.quorum(def, call, scope), ttlMs, stored)
  }

  /**
   * Read many keys at once; requests to the same node travel together.
   * Answers a Map from each key as given to its own result: one key's failure
   * does not fail the others. A key given twice is read once.
   */
  async getMany<K extends Key>(keys: readonly K[], call: CallOptions = {}): Promise<Map<K, KeyResult<GetResult<T>>>> {
    const what = `getMany of ${keys.length} keys`
    const scope = this.begin(call, what)
    checkCount('getMany', keys.length)
    this.quorum(this.def(), call, scope)
    const bytes = keys.map((k) => this.key(k))
    const reads = new Map<string, Promise<KeyResult<GetResult<T>>>>()
    const results = keys.map((k, i) => {
      const b = bytes[i] as Uint8Array
      const id = toHex(b)
      let read = reads.get(id)
      if (!read) {
        read = settle(this.retried('get', k, scope, () => this.read(b, call, scope)))
        reads.set(id, read)
      }
      return read
    })
    const settled = await untilAborted(Promise.all(results), scope.signal, what)
    return new Map(keys.map((k, i) => [k, settled[i] as KeyResult<GetResult<T>>]))
  }

  /**
   * Write a value. Pass the context of a get so it supersedes what you read; without one it becomes a sibling.
   * `ttlMs` sets when it expires; `ifAbsent` / `ifUnchanged` make it conditional, best effort (see PutConditions).
   */
  async put(key: Key, value: T, call: PutOptions = {}): Promise<{ context: string }> {
    const scope = this.begin(call, 'put')
    const bytes = this.key(key)
    const encoded = this.encode(bytes, value)
    const plan: PutPlan = { context: decodeContext(call.context ?? ''), condition: conditionalPut(call), ttlMs: checkTtl(call.ttlMs) }
    return untilAborted(
      this.retried('put', key, scope, () => this.putOne(bytes, encoded, plan, call, scope)),
      scope.signal,
      `put of ${showKey(bytes)}`,
    )
  }

  /** One put attempt; with a condition, a read quorum is checked first and the write supersedes exactly what it returned. */
  private putOne(key: Uint8Array, value: Uint8Array, plan: PutPlan, call: CallOptions, scope: CallScope): Promise<{ context: string }> {
    return this.timed('put', async () => {
      const def = this.def()
      const { condition } = plan
      const read = condition ? (await readRound(this.rt, def, key, this.quorum(def, call, scope))).set : null
      const checked = condition && read ? condition.check(read, this.rt.time.now(), `put of ${showKey(key)}`) : null
      if (checked?.applied) return { context: encodeContext(checked.clock) }
      const ttlMs = ttlFor(def, plan.ttlMs)
      const written = await this.write(def, key, value, checked?.clock ?? plan.context, call, scope, ttlMs, condition ?? undefined).catch((e) => {
        condition?.failed(e)
        throw e
      })
      return { context: encodeContext(written.clock) }
    })
  }

  /**
   * Write many values at once, each with its own context (or none). Every
   * item is checked before anything is sent; then each key succeeds or fails
   * on its own, in a Map from each key as given to its result.
   */
  async putMany<K extends Key>(items: readonly PutItem<K, T>[], call: CallOptions = {}): Promise<Map<K, KeyResult<{ context: string }>>> {
    const what = `putMany of ${items.length} items`
    const scope = this.begin(call, what)
    checkCount('putMany', items.length)
    this.quorum(this.def(), call, scope)
    const prepared = items.map((item) => {
      const bytes = this.key(item.key)
      const plan: PutPlan = { context: decodeContext(item.context ?? ''), condition: null, ttlMs: checkTtl(item.ttlMs) }
      return { key: item.key, bytes, value: this.encode(bytes, item.value), plan }
    })
    checkDistinct(
      'putMany',
      prepared.map((p) => p.bytes),
    )
    const writes = prepared.map((p) => settle(this.retried('put', p.key, scope, () => this.putOne(p.bytes, p.value, p.plan, call, scope))))
    const settled = await untilAborted(Promise.all(writes), scope.signal, what)
    return new Map(prepared.map((p, i) => [p.key, settled[i] as KeyResult<{ context: string }>]))
  }

  /**
   * Delete a key: a tombstone written through the same quorums. Without a
   * context the key is read first, so the delete covers what is there; the
   * read and the write share the call's one deadline.
   */
  async delete(key: Key, call: WriteOptions = {}): Promise<{ context: string }> {
    const scope = this.begin(call, 'delete')
    const bytes = this.key(key)
    const context = call.context === undefined ? undefined : decodeContext(call.context)
    return untilAborted(
      this.retried('delete', key, scope, () => this.deleteOne(bytes, context, call, scope)),
      scope.signal,
      `delete of ${showKey(bytes)}`,
    )
  }

  private async deleteOne(key: Uint8Array, context: VersionVector | undefined, call: CallOptions, scope: CallScope): Promise<{ context: string }> {
    const vv = context ?? decodeContext((await this.read(key, call, scope)).context)
    return this.timed('delete', async () => {
      const written = await this.write(this.def(), key, null, vv, call, scope)
      return { context: encodeContext(written.clock) }
    })
  }

  /** Delete many keys at once: bare keys are read first (as `delete` does), items with a context are not. Results as putMany's. */
  async deleteMany<K extends Key>(items: readonly (K | DeleteItem<K>)[], call: CallOptions = {}): Promise<Map<K, KeyResult<{ context: string }>>> {
    const what = `deleteMany of ${items.length} keys`
    const scope = this.begin(call, what)
    checkCount('deleteMany', items.length)
    this.quorum(this.def(), call, scope)
    const prepared = items.map((item) => {
      const { key, context }: DeleteItem<K> = isKey(item) ? { key: item } : (item as DeleteItem<K>)
      return { key, bytes: this.key(key), context: context === undefined ? undefined : decodeContext(context) }
    })
    checkDistinct(
      'deleteMany',
      prepared.map((p) => p.bytes),
    )
    const deletes = prepared.map((p) => settle(this.retried('delete', p.key, scope, () => this.deleteOne(p.bytes, p.context, call, scope))))
    const settled = await untilAborted(Promise.all(deletes), scope.signal, what)
    return new Map(prepared.map((p, i) => [p.key, settled[i] as KeyResult<{ context: string }>]))
  }

  /**
   * Read, apply `fn` to the values (empty when absent or expired), write the
   * result back with the read's context; one deadline for both. Concurrent
   * updates of one key through this handle with no options but a signal are
   * combined: one read, each function in turn on the value the one before
   * made, one write (see UpdateCombiner). Updates with quorum, timeout or ttl
   * options run alone.
   */
  async update(key: Key, fn: (values: T[]) => T, call: CallOptions & TtlOption = {}): Promise<UpdateResult<T>> {
    if (combinable(call)) {
      // Refuse a closed client or an aborted signal now, as a call alone would.
      this.begin(call, 'update')
      return this.combiner.update(this.key(key), fn, call.signal)
    }
    const scope = this.begin(call, 'update')
    const bytes = this.key(key)
    const ttlMs = checkTtl(call.ttlMs)
    return untilAborted(
      this.retried('update', key, scope, async () => {
        const read = await this.read(bytes, call, scope)
        checkAborted(scope.signal, `update of ${showKey(bytes)}`)
        const value = fn(read.values)
        const encoded = this.encode(bytes, value)
        const written = await this.putOne(bytes, encoded, { context: decodeContext(read.context), condition: null, ttlMs }, call, scope)
        return { value, context: written.context }
      }),
      scope.signal,
      `update of ${showKey(bytes)}`,
    )
  }

  /** One combined group of updates: a read, the functions, a write; the store's own deadline (no caller's signal ends it). */
  private updateGroup(bytes: Uint8Array, apply: (values: T[]) => { value: T } | null): Promise<{ context: string } | null> {
    const scope = this.begin({}, 'update')
    return this.retried('update', bytes, scope, async () => {
      const read = await this.read(bytes, {}, scope)
      const made = apply(read.values)
      if (made === null) return null
      return this.putOne(bytes, this.encode(bytes, made.value), { context: decodeContext(read.context), condition: null, ttlMs: undefined }, {}, scope)
    })
  }

  /** Every live key, as UTF-8 text, over every partition (listing.ts). Not a snapshot. */
  keys(options: ListOptions = {}): Listing<string> {
    return listKeys(this.lister(), options)
  }

  /** Every live key with its values and context, over every partition. Not a snapshot. */
  entries(options: ListOptions = {}): Listing<Entry<T>> {
    return listEntries(this.lister(), options)
  }

  /** Every key's whole merged set, tombstones and clocks included (what `kvorum export` writes). Not a snapshot. */
  versions(options: ListOptions = {}): Listing<KeySet> {
    return listVersions(this.lister(), options)
  }

  /** Merge whole sets (from `versions()`, e.g. an export) into the key's replicas; idempotent (restore.ts). */
  async restore(items: readonly KeySet[], call: CallOptions = {}): Promise<KeyResult<null>[]> {
    const scope = this.begin(call, `restore of ${items.length} keys`)
    if (items.length > MAX_RESTORE_ITEMS) throw new InvalidInputError(`restore takes at most ${MAX_RESTORE_ITEMS} sets, got ${items.length}`)
    const def = this.def()
    const round = { def, w: this.quorum(def, call, scope).w, deadline: scope.deadline, signal: scope.signal }
    return untilAborted(restoreSets(this.rt, round, items), scope.signal, `restore of ${items.length} keys`)
  }

  private lister(): ListSource<T> {
    const begin = () => void this.begin({}, 'listing')
    return { rt: this.rt, def: () => this.def(), w: this.options.w, decode: (k, s) => this.decodeSet(k, s), merge: this.options.merge, begin }
  }
}

/** An update that may share a read and a write with others: one that sets nothing but (maybe) a signal. */
function combinable(call: CallOptions): boolean {
  for (const [name, value] of Object.entries(call)) if (name !== 'signal' && value !== undefined) return false
  return true
}
