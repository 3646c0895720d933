import type Database from 'better-sqlite3'
import { type KeySet, type Time, KvorumError, assert, decodeSet, showKey } from '@kvorum/core'
import type { GroupCommit } from './group-commit.js'
import { type CheckReport, type CorruptRow, type OpenCheck, CorruptRows, MAX_REPORTED_ROWS, checkRows, pageCheck, rowFault, undecodable } from './integrity.js'
import type { Place, Rows } from './rows.js'

/** What the damage handling uses of its engine, lent once the engine has built them. */
export interface DamageParts {
  readonly rows: Rows
  readonly writes: GroupCommit
  readonly closed: () => boolean
  /** Inside a group commit: take a new actor id (the damaged row may have held dots of the current one). */
  readonly renew: () => void
}

/**
 * An engine's damaged rows: reported once each, never served (reads and
 * coordinates of the key fail with KV_DATA_CORRUPT, so they never count
 * toward a quorum), and marked by a queued job so that their Merkle leaves
 * count them as empty, differ from the peers', and repair merges them back;
 * and the on-demand check that looks for more.
 *
 * A damaged row is kept, not dropped: its failing checksum is the mark that
 * survives a restart. Marking one also gives the node a new actor id
 * (MEMBERSHIP rule 4): the row may have held versions this node
 * coordinated, and a new dot of the same actor would cover them in the
 * clock the writer gets back, which would let its next put drop them on
 * the replicas that still hold them.
 */
export class Damage {
  readonly corrupt: CorruptRows
  /** Keys whose damaged row a queued job will mark. */
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
   * A damaged row was read: report it, and queue a job that marks it (if it
   * is still damaged and unmarked then) and renews the actor id. Nothing
   * waits for the job; one that fails (a full disk) leaves the row to the
   * next read, refused meanwhile all the same.
   */
  found(store: string, place: Place, key: Uint8Array, why: string): void {
    this.corrupt.note(store, place.part, key, why)
    const { rows, writes, closed, renew } = this.lent
    const id = `${store}\u0000${Buffer.from(key).toString('latin1')}`
    if (closed() || this.dropping.has(id)) return
    this.dropping.add(id)
    const copy = key.slice()
    writes
      .submit(() => {
        const marked = rows.markDamaged(store, place, copy)
        if (marked) renew()
        return marked
      })
      .catch(() => false)
      .finally(() => this.dropping.delete(id))
  }

  /**
   * A row this build cannot read though it passes its checksum (another build wrote it): reported
   * (the log, the count), never marked or replaced; its key is refused with KV_DATA_FORMAT.
   */
  unreadable(store: string, place: Place, key: Uint8Array, why: string): void {
    this.corrupt.note(store, place.part, key, why)
  }

  /**
   * A sound row (its sum passes, its set decodes) whose stored Merkle digest
   * is wrong: its leaf would differ from its peers' for good, and repair
   * would merge the same set in vain each pass. The row's set is the truth:
   * a queued job stores its digest and recounts the leaf (if the row still
   * holds these bytes). Nothing waits for the job.
   */
  private fixDigest(store: string, place: Place, key: Uint8Array, data: Uint8Array, digest: Uint8Array): void {
    this.corrupt.note(store, place.part, key, 'Merkle digest mismatch')
    const { rows, writes } = this.lent
    writes.submit(() => rows.fixDigest(store, place, key, data, digest)).catch(() => false)
  }

  /** Rows read straight from SQLite, decoded, that pass their checksum and decode; the others are reported and left out. */
  readable(store: string, placeOf: (key: Uint8Array) => Place, rows: readonly { key: Uint8Array; data: Uint8Array; sum: number | null }[]): KeySet[] {
    const out: KeySet[] = []
    for (const r of rows) {
      const fault = rowFault(r.key, r.data, r.sum)
      if (fault) {
        this.found(store, placeOf(r.key), r.key, fault)
        continue
      }
      try {
        out.push({ key: r.key, siblings: decodeSet(r.data) })
      } catch (e) {
        this.unreadable(store, placeOf(r.key), r.key, undecodable(e))
      }
    }
    return out
  }

  /**
   * The on-demand check: SQLite's page check (`integrity_check` when `full`,
   * which also holds every index against its table; else `quick_check`),
   * then every row's checksum, decode and Merkle digest. Damaged rows are
   * reported and marked before the answer, so repair restores them; sound
   * rows written before sums were kept get theirs.
   */
  async check(full: boolean): Promise<CheckReport> {
    const started = performance.now()
    const pages = pageCheck(this.db, full ? 'integrity_check' : 'quick_check')
    const found: CorruptRow[] = []
    let corruptTotal = 0
    const { checked: rowsChecked, summed: rowsSummed } = await checkRows(
      this.db,
      (row, fault) => {
        corruptTotal++
        if (found.length < MAX_REPORTED_ROWS)
          found.push({ store: row.store, partition: row.part, key: showKey(row.key), reason: fault.reason, atMs: this.time.now() })
        // Only damage is marked for repair: a row that passes its checksum is never replaced from peers.
        const place = { part: row.part, seg: row.seg }
        if (fault.damaged) this.found(row.store, place, row.key, fault.reason)
        else if (fault.digest) this.fixDigest(row.store, place, row.key, row.data, fault.digest)
        else this.unreadable(row.store, place, row.key, fault.reason)
      },
      () => new Promise((resolve) => this.time.setImmediate(resolve)),
      // On a full disk the rows keep no sum until a later check.
      (sums) =>
        this.lent.writes
          .submit(() => this.lent.rows.addSums(sums))
          .catch((e: unknown) => {
            if (e instanceof KvorumError && e.code === 'KV_DISK_FULL') return 0
            throw e
          }),
    )
    // The marks were queued before this job: once it commits, they have.
    await this.lent.writes.submit(() => null)
    return {
      node: this.nodeId,
      atOpen: this.atOpen,
      pages,
      rowsChecked,
      rowsSummed,
      corruptRows: found,
      corruptTotal,
      sinceOpen: this.corrupt.rows,
      sinceOpenTotal: this.corrupt.total,
      ms: performance.now() - started,
    }
  }
}
