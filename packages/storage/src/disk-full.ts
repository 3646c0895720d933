import Database from 'better-sqlite3'
import { DiskFullError, assert } from '@kvorum/core'

/** Smallest database quota a node may be given, bytes: room for the schema and a cluster definition. */
export const MIN_QUOTA_BYTES = 1024 * 1024

/**
 * True when SQLite refused a write for want of room: SQLITE_FULL is what it
 * answers both when the file system says ENOSPC and when the database would
 * grow past `max_page_count` (the quota). SQLite rolls the statement (and,
 * for these errors, the transaction) back, so nothing of the write is kept.
 */
export function isDiskFull(e: unknown): boolean {
  return e instanceof Database.SqliteError && e.code === 'SQLITE_FULL'
}

/**
 * A cap on the database's size, as etcd's space quota works: once the pages
 * in use reach it, writes that add data are refused (KV_DISK_FULL) before
 * they run, while deletes, tombstone reaping and hint delivery are still
 * taken, so the operator (or the cluster) can make room without a restart.
 * Those run in a headroom above the cap (a sixteenth of it, at least 1 MiB),
 * which SQLite's `max_page_count` enforces as the hard limit; the WAL is not
 * counted (a checkpoint folds it back into pages the cap counts). A cap below
 * the file's size holds the file where it is: SQLite never truncates for it.
 */
export class Quota {
  /** Pages the database may use for data before writes that add are refused. */
  private readonly softPages: number
  readonly maxBytes: number

  constructor(
    private readonly db: Database.Database,
    maxBytes: number,
  ) {
    assert(Number.isInteger(maxBytes) && maxBytes >= MIN_QUOTA_BYTES, `a database quota is a whole number of bytes, at least ${MIN_QUOTA_BYTES}`)
    const pageSize = db.pragma('page_size', { simple: true }) as number
    this.softPages = Math.floor(maxBytes / pageSize)
    this.maxBytes = this.softPages * pageSize
    const headroomBytes = Math.max(Math.ceil(maxBytes / 16), MIN_QUOTA_BYTES)
    db.pragma(`max_page_count = ${this.softPages + Math.ceil(headroomBytes / pageSize)}`)
  }

  /** True when the pages in use (the file's pages less its free list) have reached the cap. */
  get reached(): boolean {
    const pages = this.db.pragma('page_count', { simple: true }) as number
    const free = this.db.pragma('freelist_count', { simple: true }) as number
    return pages - free >= this.softPages
  }
}

/**
 * Whether the node can write, as the last write found out: it turns full at
 * the first write refused for room, and back once a write commits again (space
 * came back: rows were deleted, hints delivered, the disk grown or cleaned). A
 * listener hears each change once, not each refused write.
 */
export class DiskState {
  private isFull = false
  /** Writes refused for want of room since the open. */
  refusals = 0

  constructor(
    private readonly nodeId: string,
    private readonly changed: (full: boolean) => void = () => {},
  ) {}

  get full(): boolean {
    return this.isFull
  }

  /** An error as callers should see it: SQLite's "database or disk is full" becomes KV_DISK_FULL naming this node. */
  translate(e: unknown): unknown {
    return isDiskFull(e) ? this.refuse() : e
  }

  /** A write refused for want of room (by the disk, or by the quota before it ran): counted, and the error to answer with. */
  refuse(): DiskFullError {
    this.refusals++
    if (!this.isFull) {
      this.isFull = true
      this.changed(true)
    }
    return new DiskFullError(this.nodeId)
  }

  /** A group of writes committed: there is room again. */
  committed(): void {
    if (!this.isFull) return
    this.isFull = false
    this.changed(false)
  }
}
