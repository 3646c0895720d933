import {
  type SiblingSet,
  type StoreDef,
  type VersionVector,
  ClientClosedError,
  InvalidInputError,
  KvorumError,
  LIMITS,
  bytesEqual,
  decodeContext,
  encodeContext,
  findStore,
  keyBytes,
  setContext,
} from '@kvorum/core'
import { type Codec, type CodecName, codecFor } from './codecs.js'
import { readRound } from './read-round.js'
import type { Runtime } from './runtime.js'
import { type WriteOutcome, writeRound } from './write-round.js'

/** Options of a store handle; quorum fields override the store definition. */
export interface StoreOptions<T> {
  /** `bytes` (default), `utf8`, `json`, or your own codec. */
  readonly codec?: CodecName | Codec<T> | undefined
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

/** Per-call options; each overrides the store handle's. */
export interface CallOptions {
  readonly r?: number | undefined
  readonly w?: number | undefined
  readonly pr?: number | undefined
  readonly pw?: number | undefined
  /** Deadline of the whole call (a read before a delete or an update included), ms. */
  readonly timeoutMs?: number | undefined
}

export interface WriteOptions extends CallOptions {
  /** The context a get returned; without one a put is a blind write that becomes a sibling of what is there. */
  readonly context?: string | undefined
}

/** What a read returns. */
export interface GetResult<T> {
  /** False when the key is absent or deleted. */
  readonly found: boolean
  /** One value per sibling (identical values once); with a merge function, the one merged value. */
  readonly values: T[]
  /** Pass to put/delete so the write supersedes what was read. */
  readonly context: string
  /** Siblings the replicas held (before any merge). */
  readonly siblings: number
}

/** Keys one getMany takes at most. */
export const MAX_GET_MANY_KEYS = LIMITS.maxBatchItems * 16

/** The one deadline of a public call: computed once, when the call starts, and shared by every step. */
interface Deadline {
  readonly deadline: number
  readonly timeoutMs: number
}

/** A typed handle on one store. */
export class Store<T> {
  private readonly codec: Codec<T>

  constructor(
    private readonly rt: Runtime,
    readonly name: string,
    private readonly options: StoreOptions<T>,
  ) {
    this.codec = codecFor(options.codec)
  }

  private def(): StoreDef {
    return findStore(this.rt.view.cluster, this.name)
  }

  /** Start a call: refuse it on a closed client, and fix its deadline. */
  private begin(call: CallOptions): Deadline {
    if (this.rt.state.closed) throw new ClientClosedError()
    const timeoutMs = call.timeoutMs ?? this.options.timeoutMs ?? this.rt.settings.timeoutMs
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new InvalidInputError(`timeoutMs must be a positive number of ms, got ${timeoutMs}`)
    return { deadline: this.rt.time.now() + timeoutMs, timeoutMs }
  }

  private quorum(def: StoreDef, call: CallOptions, d: Deadline) {
    const pick = (field: 'r' | 'w' | 'pr' | 'pw', min: number, max: number) => {
      const v = call[field] ?? this.options[field] ?? def[field]
      if (!Number.isInteger(v) || v < min || v > max)
        throw new InvalidInputError(`${field} must be an integer ${min}..${max} for store ${def.name} (n=${def.n}), got ${v}`)
      return v
    }
    const r = pick('r', 1, def.n)
    const w = pick('w', 1, def.n)
    return { r, w, pr: pick('pr', 0, r), pw: pick('pw', 0, w), ...d }
  }

  private key(key: string | Uint8Array): Uint8Array {
    const bytes = keyBytes(key)
    if (bytes.length < 1 || bytes.length > LIMITS.maxKeyBytes) throw new InvalidInputError(`key must be 1..${LIMITS.maxKeyBytes} bytes, got ${bytes.length}`)
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

  private decodeSet(set: SiblingSet): T[] {
    const distinct: Uint8Array[] = []
    for (const v of set) if (v.value && !distinct.some((d) => bytesEqual(d, v.value as Uint8Array))) distinct.push(v.value)
    return distinct.map((b) => this.codec.decode(b))
  }

  private noteSiblings(count: number): void {
    const m = this.rt.metrics
    if (count > m.siblingsSeenMax) m.siblingsSeenMax = count
    if (count >= LIMITS.warnSiblings) m.siblingWarnings++
  }

  /** Read a key: its values (siblings) and the context to write back with. */
  async get(key: string | Uint8Array, call: CallOptions = {}): Promise<GetResult<T>> {
    const bytes = this.key(key)
    return this.read(bytes, call, this.begin(call))
  }

  private read(key: Uint8Array, call: CallOptions, d: Deadline): Promise<GetResult<T>> {
    return this.timed('get', async () => {
      const def = this.def()
      const { set } = await readRound(this.rt, def, key, this.quorum(def, call, d))
      return this.resolve(def, key, set, call, d)
    })
  }

  /** With a merge function, collapse siblings into one value and write it back (within the read's deadline). */
  private async resolve(def: StoreDef, key: Uint8Array, set: SiblingSet, call: CallOptions, d: Deadline): Promise<GetResult<T>> {
    this.noteSiblings(set.length)
    const values = this.decodeSet(set)
    const context = encodeContext(setContext(set))
    const merge = this.options.merge
    if (!merge || values.length < 2) return { found: values.length > 0, values, context, siblings: set.length }
    const merged = merge(values)
    try {
      const written = await this.write(def, key, this.codec.encode(merged), setContext(set), call, d)
      // Writers racing this write-back may have left siblings beside it: fold them in too,
      // and hand back a context that covers exactly what the returned value holds.
      const others = written.siblings.length > 1 ? this.decodeSet(written.siblings) : []
      if (others.length > 1)
        return { found: true, values: [merge(others)], context: encodeContext(setContext(written.siblings)), siblings: written.siblings.length }
      return { found: true, values: [merged], context: encodeContext(written.clock), siblings: set.length }
    } catch (e) {
      // The merged value is still right; the siblings stay until the next successful merge.
      if (!(e instanceof KvorumError)) throw e
      return { found: true, values: [merged], context, siblings: set.length }
    }
  }

  private write(def: StoreDef, key: Uint8Array, value: Uint8Array | null, context: VersionVector, call: CallOptions, d: Deadline): Promise<WriteOutcome> {
    if (value && value.length > def.maxValueBytes)
      throw new InvalidInputError(`value of ${value.length} bytes is over store ${def.name}'s limit of ${def.maxValueBytes}`)
    return writeRound(this.rt, def, key, value, context, this.quorum(def, call, d))
  }

  /** Read many keys at once; requests to the same node travel together. */
  async getMany(keys: readonly (string | Uint8Array)[], call: CallOptions = {}): Promise<GetResult<T>[]> {
    if (keys.length > MAX_GET_MANY_KEYS) throw new InvalidInputError(`getMany takes at most ${MAX_GET_MANY_KEYS} keys, got ${keys.length}`)
    const bytes = keys.map((k) => this.key(k))
    const d = this.begin(call)
    return Promise.all(bytes.map((k) => this.read(k, call, d)))
  }

  /** Write a value. Pass the context of a get so it supersedes what you read; without one it becomes a sibling. */
  async put(key: string | Uint8Array, value: T, call: WriteOptions = {}): Promise<{ context: string }> {
    const bytes = this.key(key)
    const encoded = this.codec.encode(value)
    const context = decodeContext(call.context ?? '')
    const d = this.begin(call)
    return this.timed('put', async () => {
      const written = await this.write(this.def(), bytes, encoded, context, call, d)
      return { context: encodeContext(written.clock) }
    })
  }

  /**
   * Delete a key: a tombstone written through the same quorums. Without a
   * context the key is read first, so the delete covers what is there; the
   * read and the write share the call's one deadline.
   */
  async delete(key: string | Uint8Array, call: WriteOptions = {}): Promise<{ context: string }> {
    const bytes = this.key(key)
    const d = this.begin(call)
    const vv = decodeContext(call.context ?? (await this.read(bytes, call, d)).context)
    return this.timed('delete', async () => {
      const written = await this.write(this.def(), bytes, null, vv, call, d)
      return { context: encodeContext(written.clock) }
    })
  }

  /** Read, apply `fn` to the values (empty when absent), write the result back with the read's context; one deadline for both. */
  async update(key: string | Uint8Array, fn: (values: T[]) => T, call: CallOptions = {}): Promise<{ value: T; context: string }> {
    const bytes = this.key(key)
    const d = this.begin(call)
    const read = await this.read(bytes, call, d)
    const value = fn(read.values)
    const encoded = this.codec.encode(value)
    const context = decodeContext(read.context)
    return this.timed('put', async () => {
      const written = await this.write(this.def(), bytes, encoded, context, call, d)
      return { value, context: encodeContext(written.clock) }
    })
  }
}
