import type Database from 'better-sqlite3'
import { type HintItem, type HintTarget, type ConflictMode, type SiblingSet, type StoredHint, decodeSet, encodeSet, resolveSets } from '@kvorum/core'

/**
 * Hints a node keeps for other nodes: one row per (target, store, key),
 * merged into when the same key is hinted again (its seq moves, so a delivery
 * that read the older set does not delete the newer one). The methods run
 * inside the engine's group commit; the engine bounds and counts.
 *
 * The keys pending per target are also kept in memory, for metrics: counted
 * once at open (the table is bounded by the per-target limit), then moved by
 * every insert and delete, and by a transaction's changes once it commits.
 */
export class Hints {
  private readonly sql
  private readonly counts = new Map<string, number>()
  private readonly staged = new Map<string, number>()

  constructor(db: Database.Database) {
    this.sql = {
      get: db.prepare('SELECT id, data FROM hints WHERE target = ? AND store = ? AND key = ?'),
      insert: db.prepare('INSERT INTO hints (target, store, key, data, seq, created_ms) VALUES (?, ?, ?, ?, 1, ?)'),
      update: db.prepare('UPDATE hints SET data = ?, seq = seq + 1 WHERE id = ?'),
      count: db.prepare('SELECT count(*) AS n FROM hints WHERE target = ?'),
      list: db.prepare('SELECT id, seq, created_ms, store, key, data FROM hints WHERE target = ? AND id > ? ORDER BY id LIMIT ?'),
      remove: db.prepare('DELETE FROM hints WHERE target = ? AND id = ? AND seq = ?'),
      expire: db.prepare('DELETE FROM hints WHERE created_ms < ? RETURNING target'),
      targets: db.prepare('SELECT target, count(*) AS count, min(created_ms) AS oldest FROM hints GROUP BY target ORDER BY target'),
    }
    for (const { target, n } of db.prepare('SELECT target, count(*) AS n FROM hints GROUP BY target').all() as { target: string; n: number }[])
      this.counts.set(target, n)
  }

  private change(target: string, delta: number): void {
    if (delta !== 0) this.staged.set(target, (this.staged.get(target) ?? 0) + delta)
  }

  /** After the commit: the transaction's inserts and deletes count. */
  commit(): void {
    for (const [target, delta] of this.staged) {
      const n = (this.counts.get(target) ?? 0) + delta
      if (n > 0) this.counts.set(target, n)
      else this.counts.delete(target)
    }
    this.staged.clear()
  }

  /** After a rollback: they do not. */
  rollback(): void {
    this.staged.clear()
  }

  /** Committed keys hinted per target (targets with none are absent). */
  get pending(): ReadonlyMap<string, number> {
    return this.counts
  }

  /** Keys hinted for `target`. */
  count(target: string): number {
    return (this.sql.count.get(target) as { n: number }).n
  }

  /** Merge `item` into the hint already kept for its key; false when there is none. */
  mergeInto(target: string, item: HintItem, mode: ConflictMode): boolean {
    const existing = this.sql.get.get(target, item.store, item.key) as { id: number; data: Uint8Array } | undefined
    if (!existing) return false
    this.sql.update.run(encodeSet(resolveSets(mode, decodeSet(existing.data), item.siblings)), existing.id)
    return true
  }

  add(target: string, store: string, key: Uint8Array, siblings: SiblingSet, nowMs: number): void {
    this.sql.insert.run(target, store, key, encodeSet(siblings), nowMs)
    this.change(target, 1)
  }

  list(target: string, afterId: number, limit: number): StoredHint[] {
    const rows = this.sql.list.all(target, afterId, limit) as {
      id: number
      seq: number
      created_ms: number
      store: string
      key: Uint8Array
      data: Uint8Array
    }[]
    return rows.map((r) => ({ id: r.id, seq: r.seq, createdMs: r.created_ms, store: r.store, key: r.key, siblings: decodeSet(r.data) }))
  }

  /** Delete acknowledged hints whose seq is unchanged; returns how many went. */
  remove(target: string, acks: readonly { id: number; seq: number }[]): number {
    const removed = acks.reduce((n, a) => n + this.sql.remove.run(target, a.id, a.seq).changes, 0)
    this.change(target, -removed)
    return removed
  }

  /** Drop hints created before `cutoffMs`; returns how many went. */
  expire(cutoffMs: number): number {
    let expired = 0
    for (const { target } of this.sql.expire.iterate(cutoffMs) as Iterable<{ target: string }>) {
      this.change(target, -1)
      expired++
    }
    return expired
  }

  targets(): HintTarget[] {
    const rows = this.sql.targets.all() as { target: string; count: number; oldest: number }[]
    return rows.map((r) => ({ target: r.target, count: r.count, oldestMs: r.oldest }))
  }
}
