import type Database from 'better-sqlite3'
import {
  type ItemResult,
  type SiblingSet,
  type Version,
  type KvorumError,
  DataCorruptError,
  DataFormatError,
  ZERO_HASH,
  decodeSet,
  encodeSet,
  goneFromMs,
  keyDigest,
  showKey,
  storedRead,
  xorHash,
} from '@kvorum/core'
import { LastId } from './cache-id.js'
import { rowFault, rowSum, undecodable } from './integrity.js'
import type { LeafStore } from './leaves.js'
import type { StoreSizes } from './store-sizes.js'

/** Where a key lives inside a store. */
export interface Place {
  readonly part: number
  readonly seg: number
}

/** A key's committed state: its row, sibling set, stored bytes, tombstone time and Merkle digest. */
interface KeyState {
  /** Row id; null when the key has no row. */
  readonly id: number | null
  readonly set: SiblingSet
  /** The set as stored (the wire encoding of a set); null when the key has no row. */
  readonly bytes: Uint8Array | null
  /** When the key became a tombstone on this node (or its last version expires), ms; null when a value never expires. */
  readonly tombMs: number | null
  /** keyDigest of the set, worked out when first needed (for a damaged row: the digest it stores). */
  digest: Uint8Array | null
  /**
   * The row failed its checksum. It stays in the table, so the damage is found again after
   * a restart, until a merge replaces it with the incoming set (whatever the digests say); meanwhile
   * reads and coordinates of the key are refused, and its Merkle leaf counts it as empty (markDamaged).
   */
  readonly corrupt?: string
  /**
   * The row passes its checksum but does not decode (another build wrote it, or a bug did): not
   * damage, so it is never replaced or dropped for repair; writes of the key are refused instead.
   */
  readonly unreadable?: string
}

/** A key written during the open transaction: its state before, and its set now. */
interface Staged {
  /** The key's cache id. */
  readonly id: string
  readonly store: string
  readonly place: Place
  readonly key: Uint8Array
  readonly before: KeyState
  after: SiblingSet | null
}

interface Row {
  id: number
  data: Uint8Array
  tomb_ms: number | null
  sum: number | null
  digest: Uint8Array | null
}

/** Told of a row at fault when a read finds it: `damaged` when it fails its checksum, else it does not decode. */
export type CorruptRowListener = (store: string, place: Place, key: Uint8Array, reason: string, damaged: boolean) => void

/** Limits of the cache of recently used keys. */
export interface RowCacheLimits {
  /** Keys kept. Default 16,384. */
  readonly maxKeys?: number
  /** Bytes of stored sets kept. Default 64 MiB. */
  readonly maxBytes?: number
}

const ENCODED_EMPTY_SET = encodeSet([])

/**
 * The key-value rows of a store, with write-behind inside a group commit and
 * a bounded cache of recently used keys.
 *
 * Inside a transaction, reads and writes of a key go through a staged copy:
 * a hot key written several times in one group is read from SQLite at most
 * once and written once, and its Merkle leaf moves once, just before the
 * commit. After the commit the staged states become the cache, which serves
 * later reads without SQLite or decoding; after a rollback they are dropped.
 * The cache forgets the keys first loaded longest ago (first in, first out:
 * keeping an LRU order cost more than reloading a hot key now and then).
 * Every write of a kv row goes through here, so the cache never disagrees
 * with the table.
 */
export class Rows {
  private readonly cache = new Map<string, KeyState>()
  /**
   * The cached ids in the order they were first cached, from `head` on: the
   * next to forget is `order[head]`. (Finding the oldest by iterating the Map
   * skips every entry deleted before it, which grows with each eviction.)
   */
  private order: string[] = []
  private head = 0
  private readonly ids = new LastId()
  private cachedBytes = 0
  private readonly staged = new Map<string, Staged>()
  /** States written by persist(), cached once the transaction commits. */
  private readonly pending = new Map<string, KeyState>()
  /** Where damaged rows were replaced or marked in the open transaction: their leaves are recounted before the commit. */
  private readonly replaced: { store: string; place: Place }[] = []
  private readonly maxKeys: number
  private readonly maxBytes: number
  private readonly sql

  constructor(
    db: Database.Database,
    private readonly leaves: LeafStore,
    private readonly sizes: StoreSizes,
    private readonly now: () => number,
    limits: RowCacheLimits = {},
    private readonly onCorrupt: CorruptRowListener = () => {},
  ) {
    this.maxKeys = limits.maxKeys ?? 16_384
    this.maxBytes = limits.maxBytes ?? 64 * 1024 * 1024
    this.sql = {
      get: db.prepare('SELECT id, data, tomb_ms, sum, digest FROM kv WHERE store = ? AND part = ? AND seg = ? AND key = ?'),
      insert: db.prepare('INSERT INTO kv (store, part, seg, key, data, tomb_ms, digest, sum) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      update: db.prepare('UPDATE kv SET data = ?, tomb_ms = ?, digest = ?, sum = ? WHERE id = ?'),
      remove: db.prepare('DELETE FROM kv WHERE id = ?'),
      markDamaged: db.prepare('UPDATE kv SET digest = ? WHERE id = ?'),
      addSum: db.prepare('UPDATE kv SET sum = ? WHERE id = ? AND sum IS NULL AND data = ?'),
      fixDigest: db.prepare('UPDATE kv SET digest = ? WHERE store = ? AND part = ? AND seg = ? AND key = ? AND data = ?'),
    }
  }

  /** Keys and bytes held by the cache, for metrics. */
  get cacheSize(): { keys: number; bytes: number } {
    return { keys: this.cache.size, bytes: this.cachedBytes }
  }

  /**
   * The committed state of a key (outside a transaction: what readers may
   * see) as its stored bytes, with the decoded set when the cache has it. A
   * key not cached is read from SQLite and left undecoded (and uncached): a
   * node passing it on over HTTP never needs the set.
   */
  committedRead(store: string, place: Place, key: Uint8Array): ItemResult<SiblingSet> {
    const hit = this.cache.get(this.ids.of(store, key))
    if (hit) return storedRead(hit.bytes ?? ENCODED_EMPTY_SET, hit.set)
    const row = this.sql.get.get(store, place.part, place.seg, key) as Row | undefined
    if (!row) return storedRead(ENCODED_EMPTY_SET)
    // A plain Uint8Array view, as committed() keeps: sets decoded from it hold plain Uint8Array values.
    const bytes = new Uint8Array(row.data.buffer, row.data.byteOffset, row.data.byteLength)
    const fault = rowFault(key, bytes, row.sum)
    if (fault === null) return storedRead(bytes)
    // Never served, not even as missing: an empty answer would count toward a read quorum (and
    // let a deleted value win over the lost tombstone). The SDK asks the next replica instead.
    this.onCorrupt(store, place, key, fault, true)
    throw damagedError(store, key, fault)
  }

  /** Inside a transaction: the key's row is damaged (and not written in this transaction). */
  isDamaged(store: string, place: Place, key: Uint8Array): boolean {
    return !this.staged.has(this.ids.of(store, key)) && this.committed(store, place, key).corrupt !== undefined
  }

  /**
   * Inside a transaction: why a write of the key must be refused, or null.
   * A damaged row (not written in this transaction) refuses a coordinate:
   * building on a set that lost versions would hand the writer a clock over
   * them (DataCorruptError, and another primary coordinates); a merge
   * replaces it instead. A row that passes its checksum but does not decode
   * refuses both (DataFormatError): it is never replaced or dropped.
   */
  refusal(store: string, place: Place, key: Uint8Array, role: 'coordinate' | 'merge'): KvorumError | null {
    if (this.staged.has(this.ids.of(store, key))) return null
    const state = this.committed(store, place, key)
    if (state.unreadable)
      return new DataFormatError(
        `key ${showKey(key)} of store ${store}: its stored row ${state.unreadable}; another build may have written it, so it is kept as it is and this write refused`,
      )
    if (state.corrupt && role === 'coordinate') return damagedError(store, key, state.corrupt)
    return null
  }

  /** Inside a transaction: keys of one partition written (and not yet stored) by this transaction. */
  stagedKeys(store: string, part: number): Uint8Array[] {
    const out: Uint8Array[] = []
    for (const s of this.staged.values()) if (s.store === store && s.place.part === part && (s.after?.length ?? 0) > 0) out.push(s.key)
    return out
  }

  /** Inside a transaction: partitions of a store with keys written (and not yet stored) by this transaction. */
  stagedParts(store: string): Set<number> {
    const out = new Set<number>()
    for (const s of this.staged.values()) if (s.store === store && (s.after?.length ?? 0) > 0) out.add(s.place.part)
    return out
  }

  /** Inside a transaction: the key's current set, staged writes included. */
  read(store: string, place: Place, key: Uint8Array): SiblingSet {
    const staged = this.staged.get(this.ids.of(store, key))
    if (staged) return staged.after ?? staged.before.set
    return this.committed(store, place, key).set
  }

  /** When the key became a tombstone here (KeyState.tombMs); null as well while a write to it is staged. */
  tombMs(store: string, place: Place, key: Uint8Array): number | null {
    if (this.staged.has(this.ids.of(store, key))) return null
    return this.committed(store, place, key).tombMs
  }

  /** Inside a transaction: the key's set becomes `after` (stored just before the commit). */
  write(store: string, place: Place, key: Uint8Array, after: SiblingSet): void {
    const id = this.ids.of(store, key)
    const staged = this.staged.get(id)
    if (staged) {
      staged.after = after
      return
    }
    this.staged.set(id, { id, store, place, key, before: this.committed(store, place, key), after })
  }

  /** Just before the commit, inside the transaction: store every changed key once and move its leaf. */
  persist(): void {
    for (const s of this.staged.values()) {
      if (s.after === null) continue
      const digest = keyDigest(s.key, s.after)
      s.before.digest ??= keyDigest(s.key, s.before.set)
      const delta = xorHash(s.before.digest, digest)
      if (delta.every((b) => b === 0) && !s.before.corrupt) {
        s.after = null
        continue
      }
      const { before, after } = s
      // When the key became (or, for a version that will expire, becomes) a tombstone here:
      // the grace period before reaping counts from it.
      const tombMs = after.length > 0 ? goneFromMs(after, before.tombMs ?? this.now()) : null
      let state: KeyState
      // A row's size is its key and stored set, as StoreSizes counts it.
      const sizeBefore = before.bytes === null ? 0 : s.key.length + before.bytes.length
      if (after.length === 0) {
        if (before.id !== null) {
          this.sql.remove.run(before.id)
          this.sizes.change(s.store, -1, -sizeBefore)
        }
        state = { id: null, set: [], bytes: null, tombMs: null, digest }
      } else {
        const bytes = encodeSet(after)
        // The row keeps its digest: the Merkle leaves are rebuilt from these after a crash.
        let id: number
        const sum = rowSum(s.key, bytes)
        if (before.id !== null) {
          this.sql.update.run(bytes, tombMs, digest, sum, before.id)
          id = before.id
        } else {
          id = Number(this.sql.insert.run(s.store, s.place.part, s.place.seg, s.key, bytes, tombMs, digest, sum).lastInsertRowid)
        }
        this.sizes.change(s.store, before.id === null ? 1 : 0, s.key.length + bytes.length - sizeBefore)
        state = { id, set: compact(after), bytes, tombMs, digest }
      }
      this.leaves.apply(s.store, s.place.part, s.place.seg, delta)
      if (before.corrupt) this.replaced.push({ store: s.store, place: s.place })
      this.pending.set(s.id, state)
    }
  }

  /** After the commit: the written states become the cached ones. Returns how many keys were written. */
  commit(): number {
    const written = this.pending.size
    for (const [id, state] of this.pending) this.remember(id, state)
    this.pending.clear()
    this.staged.clear()
    return written
  }

  /** After a rollback: forget what was staged. */
  rollback(): void {
    this.pending.clear()
    this.staged.clear()
    this.replaced.length = 0
  }

  /** After persist(), inside the transaction: where damaged rows were replaced or marked (their leaves must be recounted from the rows), once. */
  takeReplaced(): { store: string; place: Place }[] {
    return this.replaced.splice(0)
  }

  /**
   * Inside a transaction: mark the key's row, if it is (still) damaged and
   * not marked yet, as counting for nothing in its Merkle leaf (its stored
   * digest becomes the empty set's, and the leaf is recounted from the
   * rows), so that anti-entropy finds the key different from its peers'
   * and merges it back. The row itself stays, failing its checksum. True
   * when it marked the row; a key written since is left alone.
   */
  markDamaged(store: string, place: Place, key: Uint8Array): boolean {
    if (this.staged.has(this.ids.of(store, key))) return false
    const state = this.committed(store, place, key)
    if (!state.corrupt || state.id === null || state.digest?.every((b) => b === 0)) return false
    this.sql.markDamaged.run(ZERO_HASH, state.id)
    this.replaced.push({ store, place })
    return true
  }

  /** Inside a transaction: store the right Merkle digest of a sound row that still holds `data` (not written in this transaction), and recount its leaf; true when it did. */
  fixDigest(store: string, place: Place, key: Uint8Array, data: Uint8Array, digest: Uint8Array): boolean {
    if (this.staged.has(this.ids.of(store, key))) return false
    if (this.sql.fixDigest.run(digest, store, place.part, place.seg, key, data).changes === 0) return false
    this.replaced.push({ store, place })
    return true
  }

  /** Inside a transaction: store the sums of rows that keep none, each only if its bytes are still those checked; returns how many. */
  addSums(rows: readonly { id: number; data: Uint8Array; sum: number }[]): number {
    return rows.reduce((n, r) => n + this.sql.addSum.run(r.sum, r.id, r.data).changes, 0)
  }

  private committed(store: string, place: Place, key: Uint8Array): KeyState {
    const id = this.ids.of(store, key)
    const hit = this.cache.get(id)
    if (hit) return hit
    const row = this.sql.get.get(store, place.part, place.seg, key) as Row | undefined
    if (!row) {
      const state: KeyState = { id: null, set: [], bytes: null, tombMs: null, digest: null }
      this.remember(id, state)
      return state
    }
    // A plain Uint8Array view, so values read from disk and from the cache are of one type.
    const bytes = new Uint8Array(row.data.buffer, row.data.byteOffset, row.data.byteLength)
    const fault = rowFault(key, bytes, row.sum)
    if (fault !== null) {
      // Not cached: the next merge of the key replaces the row.
      this.onCorrupt(store, place, key, fault, true)
      return { id: row.id, set: [], bytes, tombMs: null, digest: row.digest, corrupt: fault }
    }
    let set: SiblingSet
    try {
      set = decodeSet(bytes)
    } catch (e) {
      // Sound bytes this build cannot read: kept as they are (not cached), and writes of the key refused.
      const why = undecodable(e)
      this.onCorrupt(store, place, key, why, false)
      return { id: row.id, set: [], bytes, tombMs: row.tomb_ms, digest: row.digest, unreadable: why }
    }
    const state: KeyState = { id: row.id, set, bytes, tombMs: row.tomb_ms, digest: null }
    this.remember(id, state)
    return state
  }

  private remember(id: string, state: KeyState): void {
    // A key already cached keeps its place (moving it costs more than the rare reload of a hot key).
    const old = this.cache.get(id)
    if (old) this.cachedBytes -= sizeOf(old)
    else this.order.push(id)
    this.cache.set(id, state)
    this.cachedBytes += sizeOf(state)
    while (this.cache.size > this.maxKeys || this.cachedBytes > this.maxBytes) {
      // Only eviction removes ids from the cache, so order[head] is cached.
      const oldest = this.order[this.head++] as string
      this.cachedBytes -= sizeOf(this.cache.get(oldest) as KeyState)
      this.cache.delete(oldest)
    }
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head)
      this.head = 0
    }
  }
}

function damagedError(store: string, key: Uint8Array, fault: string): DataCorruptError {
  return new DataCorruptError(
    `key ${showKey(key)} of store ${store}: its stored row is damaged (${fault}); the other replicas serve it, and a merge from them (read by \`kvorum repair\`) restores it`,
  )
}

function sizeOf(state: KeyState): number {
  return 64 + (state.bytes?.byteLength ?? 0) * 2
}

/**
 * A set to keep in the cache: values that are views into a larger buffer (a
 * request body holding other keys) are copied, so the cache keeps only what
 * it counts.
 */
function compact(set: SiblingSet): SiblingSet {
  if (set.every((v) => v.value === null || v.value.buffer.byteLength <= v.value.byteLength + 1024)) return set
  return set.map((v): Version => (v.value === null || v.value.buffer.byteLength <= v.value.byteLength + 1024 ? v : { ...v, value: v.value.slice() }))
}
