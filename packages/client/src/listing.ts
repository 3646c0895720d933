import {
  type KeySet,
  type SiblingSet,
  type StoreDef,
  InvalidInputError,
  LIMITS,
  StaleMetadataError,
  encodeContext,
  isGone,
  keyBytes,
  setContext,
  toHex,
  unexpired,
} from '@kvorum/core'
import { checkAborted } from './call.js'
import { MAX_REFRESH_RETRIES } from './cluster-view.js'
import { type PartitionScanSpec, partitionSets } from './partition-scan.js'
import type { Runtime } from './runtime.js'

/** Options of `store.keys()`, `store.entries()` and `store.versions()`. */
export interface ListOptions {
  /** Only keys that start with these bytes (a string as UTF-8). Every partition is still scanned. Default none. */
  readonly prefix?: string | Uint8Array | undefined
  /** Hand out at most this many items; the listing's `cursor` then resumes after the last. Default no limit. */
  readonly limit?: number | undefined
  /** Stops the listing: the next step rejects with KV_ABORTED (a page already asked for is awaited first). Default none. */
  readonly signal?: AbortSignal | undefined
  /** Resume where an earlier listing of the same store stopped (its `cursor`). Default: from the start. */
  readonly cursor?: string | undefined
  /**
   * Replicas of each partition read and merged. Default for keys() and
   * entries() n − w + 1 (w of the handle, else the store's): every key a write
   * acknowledged with w replicas is on at least one of them. Default for
   * versions() every primary: a delete acknowledged through a hint may sit
   * on its coordinating primary alone until the hint is delivered, and an
   * export that missed that tombstone would bring the key back once it is
   * reaped; so versions() fails with KV_QUORUM_NOT_MET when a primary does
   * not answer. While a partition moves (write-both, read-new), versions()
   * reads its old and new primaries both, as that coordinator may be an old one.
   */
  readonly replicas?: number | undefined
  /**
   * Keys per scan page and replica. Default 1,000 for keys(); for entries()
   * and versions() (they carry values) 100 for a partition's first page, then
   * sized to about 4 MiB from the bytes per key seen (10..1,000 keys).
   */
  readonly pageSize?: number | undefined
  /** Called after each partition. Default none. */
  readonly onProgress?: ((progress: ListProgress) => void) | undefined
}

/** How far a listing is. */
export interface ListProgress {
  /** Partitions finished, counted from partition 0 (a resumed listing starts where its cursor points). */
  readonly partitionsDone: number
  readonly partitionsTotal: number
  /** Items handed out by this listing. */
  readonly items: number
}

/** One live key of `store.entries()`, as a get without a write-back would return it. */
export interface Entry<T> {
  /** The key as UTF-8 text (bytes that are not UTF-8 show as U+FFFD: use keyBytes). */
  readonly key: string
  readonly keyBytes: Uint8Array
  /** One value per live sibling; with the handle's merge function, the one merged value (not written back). */
  readonly values: T[]
  /** Pass to put/delete so the write supersedes what was listed. */
  readonly context: string
  /** Versions the replicas held, tombstones included. */
  readonly siblings: number
}

/** What a listing needs from its store handle. */
export interface ListSource<T> {
  readonly rt: Runtime
  def(): StoreDef
  /** The handle's w, when it overrides the store's. */
  readonly w: number | undefined
  /** The live values of a set, decoded (as get decodes them). */
  decode(key: Uint8Array, set: SiblingSet): T[]
  readonly merge: ((values: T[]) => T) | undefined
  /** Refuses a listing on a closed client. */
  begin(): void
}

/** Position after an item: its partition and key; undefined once the store's end is reached. */
interface Position {
  readonly partition: number
  readonly after: Uint8Array | undefined
}

const CURSOR_VERSION = 1

/** More replicas than a partition has: the scan reads every one of its readers (during a move too, whatever n it has there). */
const EVERY_READER = Number.MAX_SAFE_INTEGER

function encodeCursor(store: string, partitions: number, pos: Position): string {
  const body = { v: CURSOR_VERSION, s: store, q: partitions, p: pos.partition, k: pos.after ? toHex(pos.after) : null }
  return Buffer.from(JSON.stringify(body)).toString('base64url')
}

function decodeCursor(cursor: string, store: string, partitions: number): Position {
  let body: { v?: unknown; s?: unknown; q?: unknown; p?: unknown; k?: unknown }
  try {
    body = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    throw new InvalidInputError(`cursor ${JSON.stringify(cursor.slice(0, 40))} is not a listing cursor`)
  }
  const k = body.k
  const valid =
    body.v === CURSOR_VERSION &&
    Number.isInteger(body.p) &&
    (body.p as number) >= 0 &&
    (body.p as number) < partitions &&
    (k === null || (typeof k === 'string' && /^([0-9a-f]{2}){1,1024}$/.test(k)))
  if (!valid || body.s !== store || body.q !== partitions)
    throw new InvalidInputError(`cursor is not one of a listing of store ${store} with ${partitions} partitions: start the listing again without it`)
  return { partition: body.p as number, after: typeof k === 'string' ? Buffer.from(k, 'hex') : undefined }
}

function positiveInt(value: number | undefined, name: string, max: number, fallback: number): number {
  const v = value ?? fallback
  if (!Number.isInteger(v) || v < 1 || v > max) throw new InvalidInputError(`${name} must be an integer 1..${max}, got ${value}`)
  return v
}

function startsWith(key: Uint8Array, prefix: Uint8Array): boolean {
  return key.length >= prefix.length && Buffer.compare(key.subarray(0, prefix.length), prefix) === 0
}

/**
 * An async iterable over a store, partition by partition, with a resumable
 * cursor. Not a snapshot: writes during the listing may or may not show.
 * Iterate it once; to go on later, start a new listing with its cursor.
 */
export class Listing<I> implements AsyncIterable<I> {
  #cursor: string | undefined
  #used = false

  constructor(
    start: string | undefined,
    private readonly run: (mark: (cursor: string | undefined) => void) => AsyncGenerator<I>,
  ) {
    this.#cursor = start
  }

  /**
   * Where a new listing resumes: after the last item handed out (before any,
   * where this one started). Undefined once the listing reached the store's end.
   */
  get cursor(): string | undefined {
    return this.#cursor
  }

  [Symbol.asyncIterator](): AsyncIterator<I> {
    if (this.#used) throw new InvalidInputError('a listing is iterated once: start a new one with its cursor')
    this.#used = true
    return this.run((c) => {
      this.#cursor = c
    })
  }
}

/** What a listing hands out: keys (heads only), entries (live values), or versions (whole sets, from every primary). */
type ListKind = 'keys' | 'entries' | 'versions'

/** Partition by partition, the merged sets of every key of the store; `pick` turns each into an item, or skips it. */
function listing<T, I>(src: ListSource<T>, options: ListOptions, kind: ListKind, pick: (item: KeySet) => I | undefined): Listing<I> {
  const headsOnly = kind === 'keys'
  src.begin()
  const def = src.def()
  const partitions = src.rt.view.placement.partitions
  const start = options.cursor === undefined ? { partition: 0, after: undefined } : decodeCursor(options.cursor, def.name, partitions)
  const limit = positiveInt(options.limit, 'limit', Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)
  const pageSize = positiveInt(options.pageSize, 'pageSize', LIMITS.maxPageItems, headsOnly ? 1000 : 100)
  const fallback = kind === 'versions' ? EVERY_READER : Math.max(1, def.n - (src.w ?? def.w) + 1)
  const replicas = options.replicas === undefined ? fallback : positiveInt(options.replicas, 'replicas', def.n, fallback)
  const prefix = options.prefix === undefined ? undefined : keyBytes(options.prefix)
  const rt = src.rt
  const request = { timeoutMs: Math.max(rt.settings.requestTimeoutMs, 5000) }
  async function* run(mark: (cursor: string | undefined) => void): AsyncGenerator<I> {
    let items = 0
    let refreshes = 0
    for (let partition = start.partition; partition < partitions; partition++) {
      let after = partition === start.partition ? start.after : undefined
      // A node refused the scan as routed with an old definition (it may have left the partition
      // and dropped its rows): refresh, and go on after the last key this partition handed out.
      for (;;) {
        const spec: PartitionScanSpec = {
          store: def.name,
          n: def.n,
          conflict: def.conflict,
          partition,
          replicas,
          // An export reads the old primaries of a moving partition too: a write acknowledged in
          // write-both after the copy pass may sit in its coordinator's rows alone (an old primary;
          // hints stood in for the new ones), and an export of the new ones would miss it there.
          writers: kind === 'versions',
          after,
          pageSize,
          adaptive: !headsOnly && options.pageSize === undefined,
          headsOnly,
          signal: options.signal,
          request,
        }
        try {
          for await (const set of partitionSets(rt, spec)) {
            after = set.key
            if (prefix && !startsWith(set.key, prefix)) continue
            const item = pick(set)
            if (item === undefined) continue
            checkAborted(options.signal, `listing of store ${def.name}`)
            items++
            mark(encodeCursor(def.name, partitions, { partition, after: set.key }))
            yield item
            if (items >= limit) return
          }
          break
        } catch (e) {
          if (!(e instanceof StaleMetadataError) || refreshes >= MAX_REFRESH_RETRIES) throw e
          refreshes++
          await rt.view.refresh()
        }
      }
      options.onProgress?.({ partitionsDone: partition + 1, partitionsTotal: partitions, items })
    }
    mark(undefined)
  }
  return new Listing(options.cursor, run)
}

/** True when a read would show the set: some version is neither a tombstone nor expired. */
function shows(set: SiblingSet, nowMs: number): boolean {
  return !isGone(set, nowMs)
}

/** Every live key of the store, as UTF-8 text. */
export function listKeys<T>(src: ListSource<T>, options: ListOptions): Listing<string> {
  return listing(src, options, 'keys', (item) => (shows(item.siblings, src.rt.time.now()) ? Buffer.from(item.key).toString('utf8') : undefined))
}

/** Every live key with its values and context. */
export function listEntries<T>(src: ListSource<T>, options: ListOptions): Listing<Entry<T>> {
  return listing(src, options, 'entries', (item) => {
    const nowMs = src.rt.time.now()
    if (!shows(item.siblings, nowMs)) return undefined
    // As a get: expired versions are not shown, but the context covers them, so a put supersedes them.
    const live = unexpired(item.siblings, nowMs)
    const decoded = src.decode(item.key, live)
    if (decoded.length === 0) return undefined
    const values = src.merge && decoded.length > 1 ? [src.merge(decoded)] : decoded
    const key = Buffer.from(item.key).toString('utf8')
    return { key, keyBytes: item.key, values, context: encodeContext(setContext(item.siblings)), siblings: live.length }
  })
}

/** Every key with its whole merged set, tombstones and clocks included, read from every primary: what an export writes. */
export function listVersions<T>(src: ListSource<T>, options: ListOptions): Listing<KeySet> {
  return listing(src, options, 'versions', (item) => item)
}
