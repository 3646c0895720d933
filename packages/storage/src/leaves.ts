import type Database from 'better-sqlite3'
import { HASH_BYTES, SEGMENTS, xorAll, xorHash } from '@kvorum/core'

/**
 * Merkle leaves per (store, partition): the XOR of the digests of the keys in
 * each segment. Kept in SQLite (updated in the write's transaction) and
 * cached in memory a partition at a time. Changes are staged during a
 * transaction and reach the cache only after it commits.
 */
export class LeafStore {
  private readonly cache = new Map<string, Uint8Array>()
  private readonly staged = new Map<string, Uint8Array>()
  /** Leaves changed since the last commit, written once each at commit time. */
  private readonly dirty = new Map<string, { store: string; part: number; seg: number }>()
  private readonly load: Database.Statement<[string, number]>
  private readonly save: Database.Statement<[string, number, number, Uint8Array]>

  constructor(db: Database.Database) {
    this.load = db.prepare('SELECT seg, hash FROM leaves WHERE store = ? AND part = ?')
    this.save = db.prepare('INSERT INTO leaves (store, part, seg, hash) VALUES (?, ?, ?, ?) ON CONFLICT (store, part, seg) DO UPDATE SET hash = excluded.hash')
  }

  /** The packed leaves of one partition (SEGMENTS x 8 bytes), staged changes included. */
  partition(store: string, part: number): Uint8Array {
    const id = `${store}\u0000${part}`
    const staged = this.staged.get(id)
    if (staged) return staged
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
    const id = `${store}\u0000${part}`
    let leaves = this.staged.get(id)
    if (!leaves) {
      leaves = new Uint8Array(this.partition(store, part))
      this.staged.set(id, leaves)
    }
    const off = seg * HASH_BYTES
    leaves.set(xorHash(leaves.subarray(off, off + HASH_BYTES), delta), off)
    this.dirty.set(`${id}\u0000${seg}`, { store, part, seg })
  }

  /** Inside the transaction, just before it commits: write each changed leaf once. */
  persist(): void {
    for (const { store, part, seg } of this.dirty.values()) {
      const leaves = this.staged.get(`${store}\u0000${part}`) as Uint8Array
      this.save.run(store, part, seg, leaves.slice(seg * HASH_BYTES, (seg + 1) * HASH_BYTES))
    }
    this.dirty.clear()
  }

  /** After a commit: staged leaves become the cached ones. */
  commit(): void {
    for (const [id, leaves] of this.staged) this.cache.set(id, leaves)
    this.staged.clear()
  }

  /** After a rollback: forget what was staged. */
  rollback(): void {
    this.staged.clear()
    this.dirty.clear()
  }

  /** Packed roots of partitions 0..q-1. */
  roots(store: string, q: number): Uint8Array {
    const out = new Uint8Array(q * HASH_BYTES)
    for (let p = 0; p < q; p++) out.set(xorAll(this.partition(store, p)), p * HASH_BYTES)
    return out
  }
}
