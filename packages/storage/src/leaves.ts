import type Database from 'better-sqlite3'
import { HASH_BYTES, SEGMENTS, decodeSet, keyDigest, xorAll, xorHash } from '@kvorum/core'

/** What opening the leaves took: loaded from the last clean close, or rebuilt from the rows. */
export interface LeavesOpened {
  readonly rebuilt: boolean
  /** Keys read to rebuild (0 when loaded). */
  readonly keys: number
  readonly ms: number
}

/**
 * Merkle leaves per (store, partition): the XOR of the digests of the keys in
 * each segment, kept in memory.
 *
 * Every kv row stores its key's digest, written in the same transaction as
 * the row, so the rows are always the leaves' durable truth; the leaves move
 * in memory when that transaction commits. Writing a leaf row on every commit
 * as well (one more random page per write) cost ~10% of a node's CPU under
 * load, so the leaves table is only a snapshot: written at a clean close and
 * marked valid, marked invalid again at the next open. After a crash the
 * leaves are rebuilt from the row digests (a scan of the table, with its time
 * reported).
 */
export class LeafStore {
  private readonly cache = new Map<string, Uint8Array>()
  /** Leaves changed in the open transaction, with their new hashes. */
  private readonly staged = new Map<string, { store: string; part: number; seg: number; hash: Uint8Array }>()
  /** Leaves changed since the open, a bit per leaf of each partition: written to the snapshot at close. */
  private readonly changed = new Map<string, { store: string; part: number; bits: Uint8Array }>()
  private readonly load: Database.Statement<[string, number]>
  private readonly save: Database.Statement<[string, number, number, Uint8Array]>
  private readonly segmentDigests: Database.Statement<[string, number, number]>
  readonly opened: LeavesOpened

  constructor(private readonly db: Database.Database) {
    this.load = db.prepare('SELECT seg, hash FROM leaves WHERE store = ? AND part = ?')
    this.save = db.prepare('INSERT INTO leaves (store, part, seg, hash) VALUES (?, ?, ?, ?) ON CONFLICT (store, part, seg) DO UPDATE SET hash = excluded.hash')
    this.segmentDigests = db.prepare('SELECT digest FROM kv WHERE store = ? AND part = ? AND seg = ?')
    const started = performance.now()
    const clean = (db.prepare("SELECT v FROM meta WHERE k = 'leaves'").get() as { v: string } | undefined)?.v === 'clean'
    const keys = db.transaction(() => {
      const n = clean ? 0 : this.rebuild()
      // From here on the snapshot is stale until the next clean close.
      db.prepare("INSERT INTO meta (k, v) VALUES ('leaves', 'open') ON CONFLICT (k) DO UPDATE SET v = excluded.v").run()
      return n
    })()
    this.opened = { rebuilt: !clean, keys, ms: performance.now() - started }
  }

  /** Leaves from the digests the rows keep (rows from before digests were kept get theirs now). */
  private rebuild(): number {
    this.db.prepare('DELETE FROM leaves').run()
    let keys = 0
    const add = (store: string, part: number, seg: number, digest: Uint8Array) => {
      const leaves = this.partition(store, part)
      const off = seg * HASH_BYTES
      leaves.set(xorHash(leaves.subarray(off, off + HASH_BYTES), digest), off)
      this.markChanged(store, part, seg)
      keys++
    }
    const stored = this.db.prepare('SELECT store, part, seg, digest FROM kv WHERE digest IS NOT NULL').raw()
    for (const [store, part, seg, digest] of stored.iterate() as Iterable<[string, number, number, Uint8Array]>) add(store, part, seg, digest)
    // Rows from before digests were kept, a page at a time (their values are read to decode the dots).
    const missing = this.db.prepare('SELECT id, store, part, seg, key, data FROM kv WHERE digest IS NULL AND id > ? ORDER BY id LIMIT 1000')
    const setDigest = this.db.prepare('UPDATE kv SET digest = ? WHERE id = ?')
    for (let after = 0; ; ) {
      const rows = missing.all(after) as { id: number; store: string; part: number; seg: number; key: Uint8Array; data: Uint8Array }[]
      if (rows.length === 0) break
      for (const row of rows) {
        const digest = keyDigest(row.key, decodeSet(row.data))
        setDigest.run(digest, row.id)
        add(row.store, row.part, row.seg, digest)
        after = row.id
      }
    }
    return keys
  }

  /** The committed leaves of one partition, packed (SEGMENTS x 8 bytes). */
  partition(store: string, part: number): Uint8Array {
    const id = `${store}\u0000${part}`
    let leaves = this.cache.get(id)
    if (!leaves) {
      leaves = new Uint8Array(SEGMENTS * HASH_BYTES)
      for (const row of this.load.all(store, part) as { seg: number; hash: Uint8Array }[]) leaves.set(row.hash, row.seg * HASH_BYTES)
      this.cache.set(id, leaves)
    }
    return leaves
  }

  /** XOR `delta` into one leaf, staged until the caller's transaction commits. */
  apply(store: string, part: number, seg: number, delta: Uint8Array): void {
    const id = `${store}\u0000${part}\u0000${seg}`
    const staged = this.staged.get(id)
    if (staged) {
      staged.hash = xorHash(staged.hash, delta)
      return
    }
    const off = seg * HASH_BYTES
    this.staged.set(id, { store, part, seg, hash: xorHash(this.partition(store, part).subarray(off, off + HASH_BYTES), delta) })
  }

  /** After a commit: staged leaves become the current ones. */
  commit(): void {
    for (const { store, part, seg, hash } of this.staged.values()) {
      this.partition(store, part).set(hash, seg * HASH_BYTES)
      this.markChanged(store, part, seg)
    }
    this.staged.clear()
  }

  private markChanged(store: string, part: number, seg: number): void {
    const id = `${store}\u0000${part}`
    let entry = this.changed.get(id)
    if (!entry) {
      entry = { store, part, bits: new Uint8Array(SEGMENTS / 8) }
      this.changed.set(id, entry)
    }
    entry.bits[seg >> 3] = (entry.bits[seg >> 3] as number) | (1 << (seg & 7))
  }

  /**
   * Inside the transaction, once its rows are written, where a damaged row
   * was replaced or marked: the segment's leaf anew from the digests its rows
   * keep, staged like any other change. The damaged row's own digest may
   * have been the damaged part, so XOR-ing it out could leave the leaf wrong
   * for good. (Inside the transaction, not after the commit: a failing read
   * there would roll back the memory of a group SQLite had committed, and
   * the group commit would run its writes again.)
   */
  recount(store: string, part: number, seg: number): void {
    let hash: Uint8Array = new Uint8Array(HASH_BYTES)
    for (const [digest] of this.segmentDigests.raw().iterate(store, part, seg) as Iterable<[Uint8Array | null]>) if (digest) hash = xorHash(hash, digest)
    this.staged.set(`${store}\u0000${part}\u0000${seg}`, { store, part, seg, hash })
  }

  /** After a rollback: forget what was staged. */
  rollback(): void {
    this.staged.clear()
  }

  /** At a clean close, in one transaction: write the leaves changed since the open and mark the snapshot valid. */
  snapshot(): void {
    this.db.transaction(() => {
      for (const { store, part, bits } of this.changed.values()) {
        const leaves = this.partition(store, part)
        for (let seg = 0; seg < SEGMENTS; seg++) {
          if (((bits[seg >> 3] as number) & (1 << (seg & 7))) !== 0) this.save.run(store, part, seg, leaves.slice(seg * HASH_BYTES, (seg + 1) * HASH_BYTES))
        }
      }
      this.db.prepare("UPDATE meta SET v = 'clean' WHERE k = 'leaves'").run()
    })()
    this.changed.clear()
  }

  /** Packed roots of partitions 0..q-1. */
  roots(store: string, q: number): Uint8Array {
    const out = new Uint8Array(q * HASH_BYTES)
    for (let p = 0; p < q; p++) out.set(xorAll(this.partition(store, p)), p * HASH_BYTES)
    return out
  }
}
