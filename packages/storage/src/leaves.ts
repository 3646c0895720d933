import type Database from 'better-sqlite3'
import { HASH_BYTES, SEGMENTS, xorAll, xorHash } from '@kvorum/core'

/**
 * Merkle leaves per (store, partition): the XOR of the digests of the keys in
 * each segment. Kept in SQLite (updated in the write's transaction) and
 * cached in memory a partition at a time. Changes are staged leaf by leaf
 * during a transaction, written once each just before it commits, and reach
 * the cache only after it did.
 */
export class LeafStore {
  private readonly cache = new Map<string, Uint8Array>()
  /** Leaves changed in the open transaction, with their new hashes. */
  private readonly staged = new Map<string, { store: string; part: number; seg: number; hash: Uint8Array }>()
  private readonly load: Database.Statement<[string, number]>
  private readonly save: Database.Statement<[string, number, number, Uint8Array]>

  constructor(db: Database.Database) {
    this.load = db.prepare('SELECT seg, hash FROM leaves WHERE store = ? AND part = ?')
    this.save = db.prepare('INSERT INTO leaves (store, part, seg, hash) VALUES (?, ?, ?, ?) ON CONFLICT (store, part, seg) DO UPDATE SET hash = excluded.hash')
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

  /** Inside the transaction, just before it commits: write each changed leaf once. */
  persist(): void {
    for (const { store, part, seg, hash } of this.staged.values()) this.save.run(store, part, seg, hash)
  }

  /** After a commit: staged leaves become the cached ones. */
  commit(): void {
    for (const { store, part, seg, hash } of this.staged.values()) this.partition(store, part).set(hash, seg * HASH_BYTES)
    this.staged.clear()
  }

  /** After a rollback: forget what was staged. */
  rollback(): void {
    this.staged.clear()
  }

  /** Packed roots of partitions 0..q-1. */
  roots(store: string, q: number): Uint8Array {
    const out = new Uint8Array(q * HASH_BYTES)
    for (let p = 0; p < q; p++) out.set(xorAll(this.partition(store, p)), p * HASH_BYTES)
    return out
  }
}
