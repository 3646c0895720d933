import { statSync } from 'node:fs'
import { crc32 } from 'node:zlib'
import Database from 'better-sqlite3'
import { decodeSet, keyDigest, showKey } from '@kvorum/core'

/**
 * Finding damaged data: a checksum per kv row (CRC-32 of its key and stored
 * set, kept in the row's `sum` column and checked whenever the row is read
 * from SQLite), and SQLite's own page checks (`PRAGMA quick_check` at open,
 * `quick_check` or `integrity_check` on demand). A row that fails is
 * reported and never served: reads and coordinates of its key fail with
 * KV_DATA_CORRUPT (never an empty answer, which would count toward a
 * quorum). The row stays until a merge replaces it, and its Merkle leaf
 * counts it as empty, so the leaf differs from its peers' and repair
 * restores it.
 */

/** Largest database file checked with `quick_check` at open, by default (bytes): 1 GiB took 2.4 s here from the page cache (docs/reliability.md). */
export const OPEN_CHECK_MAX_BYTES = 1024 * 1024 * 1024
/** Problems SQLite lists at most per page check (its own limit argument). */
export const MAX_PAGE_PROBLEMS = 100
/** Damaged rows remembered for the check answer (the count goes on past it). */
export const MAX_REPORTED_ROWS = 1000
/** Rows read per step of the on-demand row check, between which the node serves other requests. */
export const CHECK_PAGE_ROWS = 2000

/** The checksum a row keeps: CRC-32 of its key, then its stored set. */
export function rowSum(key: Uint8Array, data: Uint8Array): number {
  return crc32(data, crc32(key))
}

/** The checksum a hint keeps: CRC-32 of its target, store (each ended by a zero byte), key, then its stored set. */
export function hintSum(target: string, store: string, key: Uint8Array, data: Uint8Array): number {
  return crc32(data, crc32(key, crc32(`${target}\u0000${store}\u0000`)))
}

/** Why a stored row cannot be trusted, or null. A row without a sum (written before sums were kept) passes unchecked. */
export function rowFault(key: Uint8Array, data: Uint8Array, sum: number | null): string | null {
  if (sum === null) return null
  return rowSum(key, data) === sum ? null : 'checksum mismatch'
}

/** A row found damaged, as the check answer and the log tell it. */
export interface CorruptRow {
  readonly store: string
  readonly partition: number
  /** The key, shown as text when it is printable (showKey). */
  readonly key: string
  readonly reason: string
  /** When it was found, ms on the engine's clock. */
  readonly atMs: number
}

/** What a page check found: SQLite's lines ("ok" is none), and how long it took. */
export interface PageCheck {
  /** `quick_check` (structure of every page) or `integrity_check` (also every index against its table). */
  readonly kind: 'quick_check' | 'integrity_check'
  readonly ran: boolean
  /** Why it did not run (a file over the open check's bound). */
  readonly skipped?: string
  readonly problems: readonly string[]
  readonly ms: number
}

/** Run one of SQLite's page checks, listing at most MAX_PAGE_PROBLEMS problems. */
export function pageCheck(db: Database.Database, kind: PageCheck['kind']): PageCheck {
  const started = performance.now()
  let lines: string[]
  try {
    lines = (db.pragma(`${kind}(${MAX_PAGE_PROBLEMS})`) as Record<string, string>[]).map((row) => String(Object.values(row)[0]))
  } catch (e) {
    // A file damaged enough that the check itself cannot read it.
    lines = [e instanceof Error ? e.message : String(e)]
  }
  const problems = lines.length === 1 && lines[0] === 'ok' ? [] : lines
  return { kind, ran: true, problems, ms: performance.now() - started }
}

/** The check at open, and what it mended. */
export interface OpenCheck extends PageCheck {
  /** True when problems were found and every index was rebuilt from its table (REINDEX). */
  readonly reindexed: boolean
  /** Problems left after the rebuild: damage in the tables themselves, which only peers can make good. */
  readonly remaining: readonly string[]
}

/**
 * The check at open: `quick_check`, which reads every page once (time in
 * proportion to the file), so it runs only on files up to `maxBytes`; a
 * larger file opens unchecked and says so, and `kvorum check` checks it
 * while the node serves. When it finds damage, every index is rebuilt from
 * its table (a damaged index makes lookups silently miss rows that are
 * there) and the check runs again; what remains is in the tables.
 */
export function openCheck(db: Database.Database, path: string, maxBytes: number): OpenCheck {
  const bytes = path === ':memory:' ? 0 : fileBytes(path)
  if (bytes > maxBytes)
    return {
      kind: 'quick_check',
      ran: false,
      skipped: `the file is ${bytes} bytes, over the open check's bound of ${maxBytes}`,
      problems: [],
      ms: 0,
      reindexed: false,
      remaining: [],
    }
  const found = pageCheck(db, 'quick_check')
  if (found.problems.length === 0) return { ...found, reindexed: false, remaining: [] }
  try {
    db.exec('REINDEX')
  } catch (e) {
    return { ...found, reindexed: false, remaining: [`REINDEX failed: ${e instanceof Error ? e.message : String(e)}`] }
  }
  return { ...found, reindexed: true, remaining: pageCheck(db, 'quick_check').problems }
}

function fileBytes(path: string): number {
  try {
    return statSync(path).size
  } catch {
    return 0
  }
}

/** True when SQLite found a page it cannot read (SQLITE_CORRUPT, SQLITE_NOTADB). */
export function isCorruptPage(e: unknown): boolean {
  return e instanceof Database.SqliteError && (e.code.startsWith('SQLITE_CORRUPT') || e.code === 'SQLITE_NOTADB')
}

/** One stored row as the full check reads it. */
export interface StoredRow {
  readonly store: string
  readonly part: number
  readonly seg: number
  readonly key: Uint8Array
  readonly data: Uint8Array
  readonly sum: number | null
  readonly digest: Uint8Array | null
}

/** What a row fails: `damaged` when its bytes are not what was written (the checksum), else a row this build cannot read or a stale digest. */
export interface RowFault {
  readonly reason: string
  readonly damaged: boolean
  /** For a sound row whose stored Merkle digest is not its set's (the digest is outside the sum): the right one. */
  readonly digest?: Uint8Array
}

/** Why a row that passes its checksum cannot be read by this build (another build wrote it, or a bug did): never treated as damage. */
export function undecodable(e: unknown): string {
  return `passes its checksum but does not decode (${e instanceof Error ? e.message : String(e)})`
}

/** What the full row check adds to the checksum: the set must decode, and its dots hash to the stored Merkle digest. */
export function deepRowFault(row: StoredRow): RowFault | null {
  const fault = rowFault(row.key, row.data, row.sum)
  if (fault) return { reason: fault, damaged: true }
  let digest: Uint8Array
  try {
    digest = keyDigest(row.key, decodeSet(row.data))
  } catch (e) {
    return { reason: undecodable(e), damaged: false }
  }
  if (row.digest && Buffer.compare(Buffer.from(row.digest), Buffer.from(digest)) !== 0) return { reason: 'Merkle digest mismatch', damaged: false, digest }
  return null
}

/**
 * The damaged rows found since the open: the first MAX_REPORTED_ROWS kept
 * for the check answer (one entry per key), all of them counted, and each
 * told once to a listener (the node's log).
 */
export class CorruptRows {
  private readonly found = new Map<string, CorruptRow>()
  /** Damaged rows found since the open (a row found again after it was restored counts again). */
  total = 0

  constructor(
    private readonly now: () => number,
    private readonly told: (row: CorruptRow) => void = () => {},
  ) {}

  /** Note a damaged row; false when it was already noted (and not restored since). */
  note(store: string, partition: number, key: Uint8Array, reason: string): boolean {
    const id = `${store}\u0000${Buffer.from(key).toString('latin1')}`
    if (this.found.has(id)) return false
    const row: CorruptRow = { store, partition, key: showKey(key), reason, atMs: this.now() }
    this.total++
    if (this.found.size < MAX_REPORTED_ROWS) this.found.set(id, row)
    this.told(row)
    return true
  }

  /** The rows reported, oldest first. */
  get rows(): CorruptRow[] {
    return [...this.found.values()]
  }
}

/**
 * Read every kv row, CHECK_PAGE_ROWS at a time (yielding between pages, so
 * the node serves requests meanwhile), and tell `found` of each that fails
 * deepRowFault. Returns the rows read.
 */
export async function checkRows(
  db: Database.Database,
  found: (row: StoredRow, fault: RowFault) => void,
  pause: () => Promise<void>,
  /** Given a page's sound rows that keep no sum yet (written before sums were kept), with the sums to store; resolves to how many were stored. */
  backfill: (sums: readonly UnsummedRow[]) => Promise<number>,
): Promise<{ checked: number; summed: number }> {
  const page = db.prepare('SELECT id, store, part, seg, key, data, sum, digest FROM kv WHERE id > ? ORDER BY id LIMIT ?')
  let checked = 0
  let summed = 0
  for (let after = 0; ; ) {
    const rows = page.all(after, CHECK_PAGE_ROWS) as (StoredRow & { id: number })[]
    const unsummed: UnsummedRow[] = []
    for (const row of rows) {
      const fault = deepRowFault(row)
      if (fault) found(row, fault)
      else if (row.sum === null) unsummed.push({ id: row.id, data: row.data, sum: rowSum(row.key, row.data) })
      after = row.id
    }
    checked += rows.length
    if (unsummed.length > 0) summed += await backfill(unsummed)
    if (rows.length < CHECK_PAGE_ROWS) return { checked, summed }
    await pause()
  }
}

/** A row the check found sound that keeps no sum yet, and the sum to store (only if its bytes are still these). */
export interface UnsummedRow {
  readonly id: number
  readonly data: Uint8Array
  readonly sum: number
}

/** The answer of an on-demand check of one node. */
export interface CheckReport {
  readonly node: string
  /** The page check at the last open. */
  readonly atOpen: OpenCheck
  /** The page check just run. */
  readonly pages: PageCheck
  readonly rowsChecked: number
  /** Rows written before sums were kept that this check found sound and gave their sum (checked on every read from now on). */
  readonly rowsSummed: number
  /**
   * Rows this check found at fault (at most MAX_REPORTED_ROWS listed): damaged ones (checksum) are
   * marked so that repair restores them; ones that pass their checksum but do not decode are kept.
   */
  readonly corruptRows: readonly CorruptRow[]
  readonly corruptTotal: number
  /** Damaged rows found since the open, by reads and checks (at most MAX_REPORTED_ROWS listed). */
  readonly sinceOpen: readonly CorruptRow[]
  readonly sinceOpenTotal: number
  readonly ms: number
}
