import type Database from 'better-sqlite3'

/** Keys stored in one store (tombstones included until reaped) and their bytes: key plus stored set, before SQLite's own overhead. */
export interface StoreSize {
  readonly keys: number
  readonly bytes: number
}

/** How the sizes were had at open: from the last clean close, or counted from the table (after a crash or an upgrade). */
export interface SizesOpened {
  readonly counted: boolean
  readonly ms: number
}

const SNAPSHOT_KEY = 'store_sizes'

/**
 * Keys and bytes per store, moved by every row write so a metrics scrape
 * never scans. A clean close writes them to a snapshot, which the next open
 * reads and deletes at once: after a crash there is none, and the open counts
 * the table once instead (one pass over the rows, like the leaves rebuild).
 * Changes made inside a transaction count only once it commits.
 */
export class StoreSizes {
  private readonly sizes = new Map<string, { keys: number; bytes: number }>()
  private readonly staged = new Map<string, { keys: number; bytes: number }>()
  readonly opened: SizesOpened

  constructor(private readonly db: Database.Database) {
    const started = performance.now()
    const counted = db.transaction(() => {
      const row = db.prepare('SELECT v FROM meta WHERE k = ?').get(SNAPSHOT_KEY) as { v: string } | undefined
      db.prepare('DELETE FROM meta WHERE k = ?').run(SNAPSHOT_KEY)
      const saved = row ? readSnapshot(row.v) : null
      const rows = saved
        ? Object.entries(saved).map(([store, size]) => ({ store, ...size }))
        : (db.prepare('SELECT store, count(*) AS keys, sum(length(key) + length(data)) AS bytes FROM kv GROUP BY store').all() as (StoreSize & {
            store: string
          })[])
      for (const { store, keys, bytes } of rows) this.sizes.set(store, { keys, bytes })
      return saved === null
    })()
    this.opened = { counted, ms: performance.now() - started }
  }

  /** Inside a transaction: a store gained (or lost, when negative) keys and bytes. */
  change(store: string, keys: number, bytes: number): void {
    const staged = this.staged.get(store)
    if (staged) {
      staged.keys += keys
      staged.bytes += bytes
    } else this.staged.set(store, { keys, bytes })
  }

  commit(): void {
    for (const [store, delta] of this.staged) {
      const size = this.sizes.get(store)
      if (size) {
        size.keys += delta.keys
        size.bytes += delta.bytes
      } else this.sizes.set(store, { ...delta })
    }
    this.staged.clear()
  }

  rollback(): void {
    this.staged.clear()
  }

  /** The committed sizes, by store. */
  get all(): ReadonlyMap<string, StoreSize> {
    return this.sizes
  }

  /** At a clean close: keep the sizes for the next open. */
  snapshot(): void {
    const saved = Object.fromEntries(this.sizes)
    this.db.prepare('INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v').run(SNAPSHOT_KEY, JSON.stringify(saved))
  }
}

/** A snapshot as written by snapshot(), or null when it is not one (then the open counts the table). */
function readSnapshot(text: string): Record<string, StoreSize> | null {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return null
  }
  if (typeof parsed !== 'object' || parsed === null) return null
  const count = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0
  const sizes = Object.values(parsed as Record<string, unknown>)
  return sizes.every((s) => typeof s === 'object' && s !== null && count((s as StoreSize).keys) && count((s as StoreSize).bytes))
    ? (parsed as Record<string, StoreSize>)
    : null
}
