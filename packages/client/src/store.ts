import {
  type SiblingSet, type StoreDef, type VersionVector, InvalidInputError, LIMITS, bytesEqual, decodeContext,
  encodeContext, findStore, keyBytes, setContext,
} from '@kvorum/core'
import { type Codec, type CodecName, codecFor } from './codecs.js'
import { type WriteOutcome, coordinateGet, coordinatePut } from './coordinator.js'
import type { Kvorum } from './client.js'

/** Options of a store handle; quorum fields override the store definition. */
export interface StoreOptions<T> {
  /** `bytes` (default), `utf8`, `json`, or your own codec. */
  readonly codec?: CodecName | Codec<T>
  /** Resolves siblings into one value; `get` then writes it back so they collapse. Default none: siblings are returned. */
  readonly merge?: (values: T[]) => T
  readonly r?: number
  readonly w?: number
  readonly pr?: number
  readonly pw?: number
  /** Deadline of each operation, ms. Default the client's (3000). */
  readonly timeoutMs?: number
}

/** Per-call options. */
export interface CallOptions {
  readonly r?: number
  readonly w?: number
  readonly pr?: number
  readonly pw?: number
  readonly timeoutMs?: number
}

export interface WriteOptions extends CallOptions {
  /** The context a get returned; without one a put is a blind write that becomes a sibling of what is there. */
  readonly context?: string
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

/** A typed handle on one store. */
export class Store<T> {
  private readonly codec: Codec<T>

  constructor(
    private readonly kv: Kvorum,
    readonly name: string,
    private readonly options: StoreOptions<T>,
  ) {
    this.codec = codecFor(options.codec)
  }

  private def(): StoreDef {
    return findStore(this.kv.cluster, this.name)
  }

  private quorum(def: StoreDef, call: CallOptions) {
    const pick = (field: 'r' | 'w' | 'pr' | 'pw', min: number, max: number) => {
      const v = call[field] ?? this.options[field] ?? def[field]
      if (!Number.isInteger(v) || v < min || v > max) throw new InvalidInputError(`${field} must be an integer ${min}..${max} for store ${def.name} (n=${def.n}), got ${v}`)
      return v
    }
    const timeoutMs = call.timeoutMs ?? this.options.timeoutMs ?? this.kv.timeoutMs
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new InvalidInputError(`timeoutMs must be a positive number of ms, got ${timeoutMs}`)
    const r = pick('r', 1, def.n)
    const w = pick('w', 1, def.n)
    return { r, w, pr: pick('pr', 0, r), pw: pick('pw', 0, w), deadline: Date.now() + timeoutMs }
  }

  private key(key: string | Uint8Array): Uint8Array {
    const bytes = keyBytes(key)
    if (bytes.length < 1 || bytes.length > LIMITS.maxKeyBytes) throw new InvalidInputError(`key must be 1..${LIMITS.maxKeyBytes} bytes, got ${bytes.length}`)
    return bytes
  }

  private async timed<R>(op: string, run: () => Promise<R>): Promise<R> {
    const started = performance.now()
    try {
      const out = await this.kv.withRefresh(run)
      this.kv.metrics.observe(op, performance.now() - started, false)
      return out
    } catch (e) {
      this.kv.metrics.observe(op, performance.now() - started, true)
      throw e
    }
  }

  private decodeSet(set: SiblingSet): T[] {
    const distinct: Uint8Array[] = []
    for (const v of set) if (v.value && !distinct.some((d) => bytesEqual(d, v.value as Uint8Array))) distinct.push(v.value)
    return distinct.map((b) => this.codec.decode(b))
  }

  private noteSiblings(count: number): void {
    const m = this.kv.metrics
    if (count > m.siblingsSeenMax) m.siblingsSeenMax = count
    if (count >= LIMITS.warnSiblings) m.siblingWarnings++
  }

  /** Read a key: its values (siblings) and the context to write back with. */
  async get(key: string | Uint8Array, call: CallOptions = {}): Promise<GetResult<T>> {
    const bytes = this.key(key)
    return this.timed('get', async () => {
      const def = this.def()
      const q = this.quorum(def, call)
      const { set } = await coordinateGet(this.kv, def, bytes, q, q.deadline)
      return this.resolve(def, bytes, set, call)
    })
  }

  /** With a merge function, collapse siblings into one value and write it back. */
  private async resolve(def: StoreDef, key: Uint8Array, set: SiblingSet, call: CallOptions): Promise<GetResult<T>> {
    this.noteSiblings(set.length)
    const values = this.decodeSet(set)
    const context = encodeContext(setContext(set))
    const merge = this.options.merge
    if (!merge || values.length < 2) return { found: values.length > 0, values, context, siblings: set.length }
    const merged = merge(values)
    try {
      const written = await this.write(def, key, this.codec.encode(merged), setContext(set), call)
      // Writers racing this write-back may have left siblings beside it: fold them in too,
      // and hand back a context that covers exactly what the returned value holds.
      const others = written.siblings.length > 1 ? this.decodeSet(written.siblings) : []
      if (others.length > 1) return { found: true, values: [merge(others)], context: encodeContext(setContext(written.siblings)), siblings: written.siblings.length }
      return { found: true, values: [merged], context: encodeContext(written.clock), siblings: set.length }
    } catch {
      // The merged value is still right; the siblings stay until the next successful merge.
      return { found: true, values: [merged], context, siblings: set.length }
    }
  }

  private write(def: StoreDef, key: Uint8Array, value: Uint8Array | null, context: VersionVector, call: CallOptions): Promise<WriteOutcome> {
    if (value && value.length > def.maxValueBytes) throw new InvalidInputError(`value of ${value.length} bytes is over store ${def.name}'s limit of ${def.maxValueBytes}`)
    const q = this.quorum(def, call)
    return coordinatePut(this.kv, def, key, value, context, q, q.deadline)
  }

  /** Read many keys at once; requests to the same node travel together. */
  async getMany(keys: readonly (string | Uint8Array)[], call: CallOptions = {}): Promise<GetResult<T>[]> {
    if (keys.length > LIMITS.maxBatchItems * 16) throw new InvalidInputError(`getMany takes at most ${LIMITS.maxBatchItems * 16} keys, got ${keys.length}`)
    return Promise.all(keys.map((k) => this.get(k, call)))
  }

  /** Write a value. Pass the context of a get so it supersedes what you read; without one it becomes a sibling. */
  async put(key: string | Uint8Array, value: T, call: WriteOptions = {}): Promise<{ context: string }> {
    const bytes = this.key(key)
    const encoded = this.codec.encode(value)
    const context = decodeContext(call.context ?? '')
    return this.timed('put', async () => {
      const written = await this.write(this.def(), bytes, encoded, context, call)
      return { context: encodeContext(written.clock) }
    })
  }

  /**
   * Delete a key: a tombstone written through the same quorums. Without a
   * context the key is read first, so the delete covers what is there.
   */
  async delete(key: string | Uint8Array, call: WriteOptions = {}): Promise<{ context: string }> {
    const bytes = this.key(key)
    let context = call.context
    if (context === undefined) context = (await this.get(bytes, call)).context
    const vv = decodeContext(context)
    return this.timed('delete', async () => {
      const written = await this.write(this.def(), bytes, null, vv, call)
      return { context: encodeContext(written.clock) }
    })
  }

  /** Read, apply `fn` to the values (empty when absent), write the result back with the read's context. */
  async update(key: string | Uint8Array, fn: (values: T[]) => T, call: CallOptions = {}): Promise<{ value: T; context: string }> {
    const read = await this.get(key, call)
    const value = fn(read.values)
    const { context } = await this.put(key, value, { ...call, context: read.context })
    return { value, context }
  }
}
