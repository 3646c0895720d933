import type Database from 'better-sqlite3'
import { DataFormatError } from '@kvorum/core'

/** How hard a commit tries to reach the disk. */
export type Durability = 'normal' | 'full'

/**
 * Open-time setup: WAL so readers never block the writer, and `synchronous`
 * per the durability setting. Under WAL, NORMAL survives a process crash
 * (SIGKILL) but not a power loss; FULL fsyncs every commit.
 */
/**
 * The file format this build writes. 1: rows keep their key's Merkle digest
 * and the leaves table is a snapshot valid only after a clean close. 2: rows
 * keep a checksum of their key and set (`sum`; rows written before it have
 * none, and are checked once rewritten), and hints one of their target,
 * store, key and set; a build of format 1 would rewrite rows without it,
 * leaving stale sums. 3: a stored version's flag byte may carry the expiry
 * bit (2) and its expiresAt, which a build of format 1 or 2 would misread as
 * a bad row. A build that finds a newer format refuses to open the file
 * rather than corrupt it.
 */
export const FORMAT = 3

/** SQLite's memory: its page cache and how much of the file it maps, MiB. */
export interface SqliteMemory {
  readonly pageCacheMiB: number
  readonly mmapMiB: number
}

/** The defaults of SqliteMemory: half of the node's default 64 MiB cache budget, and no mapping (see the node's --mmap-mib). */
export const SQLITE_MEMORY: SqliteMemory = { pageCacheMiB: 32, mmapMiB: 0 }

export function applySchema(db: Database.Database, durability: Durability, memory: SqliteMemory = SQLITE_MEMORY): void {
  const format = db.pragma('user_version', { simple: true }) as number
  if (format > FORMAT) throw new DataFormatError(format, FORMAT)
  db.pragma('journal_mode = WAL')
  db.pragma(`synchronous = ${durability === 'full' ? 'FULL' : 'NORMAL'}`)
  db.pragma('busy_timeout = 5000')
  // A negative cache_size is in KiB.
  db.pragma(`cache_size = -${Math.round(memory.pageCacheMiB * 1024)}`)
  // Checkpoints fsync the database file; let the WAL grow to ~40 MB between them so they stay rare.
  db.pragma('wal_autocheckpoint = 10000')
  db.pragma(`mmap_size = ${Math.round(memory.mmapMiB * 1024 * 1024)}`)
  db.exec(`
    CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS kv (
      id INTEGER PRIMARY KEY,
      store TEXT NOT NULL,
      part INTEGER NOT NULL,
      seg INTEGER NOT NULL,
      key BLOB NOT NULL,
      data BLOB NOT NULL,
      tomb_ms INTEGER,
      digest BLOB,
      sum INTEGER
    );
    CREATE UNIQUE INDEX IF NOT EXISTS kv_place ON kv (store, part, seg, key);
    CREATE INDEX IF NOT EXISTS kv_tombs ON kv (store, tomb_ms) WHERE tomb_ms IS NOT NULL;
    CREATE TABLE IF NOT EXISTS leaves (
      store TEXT NOT NULL, part INTEGER NOT NULL, seg INTEGER NOT NULL, hash BLOB NOT NULL,
      PRIMARY KEY (store, part, seg)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS hints (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      target TEXT NOT NULL,
      store TEXT NOT NULL,
      key BLOB NOT NULL,
      data BLOB NOT NULL,
      seq INTEGER NOT NULL,
      created_ms INTEGER NOT NULL,
      sum INTEGER
    );
    CREATE UNIQUE INDEX IF NOT EXISTS hints_key ON hints (target, store, key);
    CREATE INDEX IF NOT EXISTS hints_order ON hints (target, id);
  `)
  // Databases from before rows kept their key's Merkle digest: LeafStore fills it in at the first open.
  const columns = db.prepare('PRAGMA table_info(kv)').all() as { name: string }[]
  if (!columns.some((c) => c.name === 'digest')) db.exec('ALTER TABLE kv ADD COLUMN digest BLOB')
  if (!columns.some((c) => c.name === 'sum')) db.exec('ALTER TABLE kv ADD COLUMN sum INTEGER')
  // Hints keep a checksum too (hints written before it have none and pass unchecked).
  const hintColumns = db.prepare('PRAGMA table_info(hints)').all() as { name: string }[]
  if (!hintColumns.some((c) => c.name === 'sum')) db.exec('ALTER TABLE hints ADD COLUMN sum INTEGER')
  db.pragma(`user_version = ${FORMAT}`)
}
