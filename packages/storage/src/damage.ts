import type Database from 'better-sqlite3'
import { type Time, assert, showKey } from '@kvorum/core'
import type { GroupCommit } from './group-commit.js'
import { type CheckReport, type CorruptRow, type OpenCheck, CorruptRows, MAX_REPORTED_ROWS, checkRows, pageCheck, rowFault } from './integrity.js'
import type { Place, Rows } from './rows.js'

/** What the damage handling uses of its engine, lent once the engine has built them. */
export interface DamageParts {
  readonly rows: Rows
  readonly writes: GroupCommit
  readonly closed: () => boolean
}

/**
 * An engine's damaged rows: reported once each, treated as missing, and
 * dropped by a queued job so that their Merkle leaves differ from the peers'
 * and repair restores them; and the on-demand check that looks for more.
 */
export class Damage {
  readonly corrupt: CorruptRows
  /** Keys whose damaged row a queued job will drop. */
  private readonly dropping = new Set<string>()
  private parts: DamageParts | null = null

  constructor(
    private readonly db: Database.Database,
    private readonly nodeId: string,
    private readonly time: Time,
    /** SQLite's page check at open. */
    readonly atOpen: OpenCheck,
    told?: (row: CorruptRow) => void,
  ) {
    this.corrupt = new CorruptRows(() => time.now(), told)
  }

  attach(parts: DamageParts): void {
    this.parts = parts
  }

  private get lent(): DamageParts {
    assert(this.parts, 'the engine attaches its rows and writes before any read')
    return this.parts
  }

  /**
   * A damaged row was read: report it, and queue a job that drops it (if it
   * is still damaged then). Nothing waits for the job; one that fails (a full
   * disk) leaves the row to the next read.
   */
  found(store: string, place: Place, key: Uint8Array, why: string): void {
    this.corrupt.note(store, place.part, key, why)
    const { rows, writes, closed } = this.lent
    const id = `${store}\u0000${Buffer.from(key).toString('latin1')}`
    if (closed() || this.dropping.has(id)) return
    this.dropping.add(id)
    const copy = key.slice()
    writes
      .submit(() => rows.dropIfCorrupt(store, place, copy))
      .catch(() => false)
      .finally(() => this.dropping.delete(id))
  }

  /** Rows read straight from SQLite that pass their checksum; the others are reported and left out. */
  trusted<R extends { key: Uint8Array; data: Uint8Array; sum: number | null }>(store: string, placeOf: (key: Uint8Array) => Place, rows: readonly R[]): R[] {
    return rows.filter((r) => {
      const fault = rowFault(r.key, r.data, r.sum)
      if (fault) this.found(store, placeOf(r.key), r.key, fault)
      return fault === null
    })
  }

  /**
   * The on-demand check: SQLite's page check (`integrity_check` when `full`,
   * which also holds every index against its table; else `quick_check`),
   * then every row's checksum, decode and Merkle digest. Damaged rows are
   * reported and dropped before the answer, so repair restores them.
   */
  async check(full: boolean): Promise<CheckReport> {
    const started = performance.now()
    const pages = pageCheck(this.db, full ? 'integrity_check' : 'quick_check')
    const found: CorruptRow[] = []
    let corruptTotal = 0
    const rowsChecked = await checkRows(
      this.db,
      (row, why) => {
        corruptTotal++
        if (found.length < MAX_REPORTED_ROWS) found.push({ store: row.store, partition: row.part, key: showKey(row.key), reason: why, atMs: this.time.now() })
        this.found(row.store, { part: row.part, seg: row.seg }, row.key, why)
      },
      () => new Promise((resolve) => this.time.setImmediate(resolve)),
    )
    // The drops were queued before this job: once it commits, they have.
    await this.lent.writes.submit(() => null)
    return {
      node: this.nodeId,
      atOpen: this.atOpen,
      pages,
      rowsChecked,
      corruptRows: found,
      corruptTotal,
      sinceOpen: this.corrupt.rows,
      sinceOpenTotal: this.corrupt.total,
      ms: performance.now() - started,
    }
  }
}
