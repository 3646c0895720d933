import type Database from 'better-sqlite3'
import {
  type HintItem,
  type HintTarget,
  type ConflictMode,
  type SiblingSet,
  type StoredHint,
  DataFormatError,
  decodeSet,
  encodeSet,
  resolveSets,
  showKey,
} from '@kvorum/core'
import { hintSum } from './integrity.js'

/** A kept hint that cannot be delivered: its checksum fails (damage on disk), or it does not decode. */
export interface DamagedHint {
  readonly id: number
  readonly seq: number
  readonly target: string
  readonly store: string
  readonly key: Uint8Array
  readonly reason: string
  /** True when its checksum failed: the bytes are not what was written, and the hint is dropped (anti-entropy repairs the key). */
  readonly damaged: boolean
}

interface HintRow {
  id: number
  seq: number
  created_ms: number
  store: string
  key: Uint8Array
  data: Uint8Array
  sum: number | null
}

/**
 * Hints a node keeps for other nodes: one row per (target, store, key),
 * merged into when the same key is hinted again (its seq moves, so a delivery
 * that read the older set does not delete the newer one). The methods run
 * inside the engine's group commit; the engine bounds and counts.
 *
 * Each hint keeps a checksum (`sum`: CRC-32 of its target, store, key and
 * set), checked when it is listed and when a new hint merges into it: a
 * damaged hint is never delivered or merged into, only reported (hints
 * written before the sum was kept have none and pass unchecked).
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
      get: db.prepare('SELECT id, seq, created_ms, store, key, data, sum FROM hints WHERE target = ? AND store = ? AND key = ?'),
      insert: db.prepare('INSERT INTO hints (target, store, key, data, seq, created_ms, sum) VALUES (?, ?, ?, ?, 1, ?, ?)'),
      update: db.prepare('UPDATE hints SET data = ?, sum = ?, seq = seq + 1 WHERE id = ?'),
      count: db.prepare('SELECT count(*) AS n FROM hints WHERE target = ?'),
      list: db.prepare('SELECT id, seq, created_ms, store, key, data, sum FROM hints WHERE target = ? AND id > ? ORDER BY id LIMIT ?'),
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

  /**
   * Merge `item` into the hint already kept for its key; false when there is
   * none. A kept hint whose checksum fails is replaced by `item` (told to
   * `damaged`); one that passes its checksum but does not decode is left as
   * it is and the new hint refused (DataFormatError): it is a format this
   * build cannot read (another build wrote it), not damage.
   */
  mergeInto(target: string, item: HintItem, mode: ConflictMode, damaged: (hint: DamagedHint) => void): boolean {
    const existing = this.sql.get.get(target, item.store, item.key) as HintRow | undefined
    if (!existing) return false
    const read = readHint(target, existing)
    if ('reason' in read) {
      if (!read.damaged)
        throw new DataFormatError(
          `the hint kept for ${target} of key ${showKey(item.key)} in store ${item.store} passes its checksum but ${read.reason}: another build wrote it; it is kept as it is, and this hint refused`,
        )
      damaged(read)
      const data = encodeSet(item.siblings)
      this.sql.update.run(data, hintSum(target, item.store, item.key, data), existing.id)
      return true
    }
    const data = encodeSet(resolveSets(mode, read.siblings, item.siblings))
    this.sql.update.run(data, hintSum(target, item.store, item.key, data), existing.id)
    return true
  }

  add(target: string, store: string, key: Uint8Array, siblings: SiblingSet, nowMs: number): void {
    const data = encodeSet(siblings)
    this.sql.insert.run(target, store, key, data, nowMs, hintSum(target, store, key, data))
    this.change(target, 1)
  }

  /** A page of `target`'s hints after `afterId`; those that cannot be delivered are left out and told to `damaged` (the page goes on past them). */
  list(target: string, afterId: number, limit: number, damaged: (hint: DamagedHint) => void): StoredHint[] {
    const out: StoredHint[] = []
    for (const row of this.sql.list.all(target, afterId, limit) as HintRow[]) {
      const read = readHint(target, row)
      if ('reason' in read) damaged(read)
      else out.push(read)
    }
    return out
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

  /** Drop damaged hints whose seq is unchanged (a hint merged into since was replaced whole); returns how many went. */
  drop(hints: readonly DamagedHint[]): number {
    let dropped = 0
    for (const h of hints) {
      const gone = this.sql.remove.run(h.target, h.id, h.seq).changes
      this.change(h.target, -gone)
      dropped += gone
    }
    return dropped
  }

  targets(): HintTarget[] {
    const rows = this.sql.targets.all() as { target: string; count: number; oldest: number }[]
    return rows.map((r) => ({ target: r.target, count: r.count, oldestMs: r.oldest }))
  }
}

/** A kept hint as stored, or why it cannot be delivered. */
function readHint(target: string, row: HintRow): StoredHint | DamagedHint {
  const base = { id: row.id, seq: row.seq, target, store: row.store, key: row.key }
  if (row.sum !== null && hintSum(target, row.store, row.key, row.data) !== row.sum) return { ...base, reason: 'checksum mismatch', damaged: true }
  try {
    return { id: row.id, seq: row.seq, createdMs: row.created_ms, store: row.store, key: row.key, siblings: decodeSet(row.data) }
  } catch (e) {
    return { ...base, reason: `does not decode (${e instanceof Error ? e.message : String(e)})`, damaged: false }
  }
}
