import { randomBytes } from 'node:crypto'
import Database from 'better-sqlite3'
import {
  type ClusterDef,
  type CoordinateItem,
  type CoordinateResult,
  type HintItem,
  type HintTarget,
  type ItemResult,
  type KeySet,
  type HealthOptions,
  type NodeHealth,
  type NodeProtocol,
  type ScanPage,
  type ScanRequest,
  type SiblingSet,
  type StoreBatch,
  type StoreBatchResults,
  type StoreDef,
  type StoredHint,
  type Time,
  type TombstoneRequest,
  type Version,
  DataCorruptError,
  DiskFullError,
  NodeClosedError,
  BRANCHES,
  BRANCH_FANOUT,
  HASH_BYTES,
  HintBacklogFullError,
  CLUSTER_LIMITS,
  InvalidInputError,
  KvorumError,
  NoClusterError,
  Placement,
  TooManySiblingsError,
  branchesOf,
  coordinatedSet,
  LIMITS,
  findStore,
  isGone,
  realTime,
  keyHash,
  partitionOfHash,
  resolveSets,
  sameSet,
  segmentOfHash,
  showKey,
  validateCluster,
} from '@kvorum/core'
import { DiskState, Quota, isDiskFull } from './disk-full.js'
import { GroupCommit } from './group-commit.js'
import { Damage } from './damage.js'
import { type CheckReport, type CorruptRow, type CorruptRows, type OpenCheck, OPEN_CHECK_MAX_BYTES, isCorruptPage, openCheck } from './integrity.js'
import { MovedAt } from './moved.js'
import { type Role, checkInstall, ownerError, partitionsToDrop, scanFenceError } from './ownership.js'
import { type DamagedHint, Hints } from './hints.js'
import { type LeavesOpened, LeafStore } from './leaves.js'
import { type Place, type RowCacheLimits, Rows } from './rows.js'
import { type Durability, type SqliteMemory, applySchema } from './schema.js'
import { type SizesOpened, type StoreSize, StoreSizes } from './store-sizes.js'

/** Options of a storage engine. */
export interface EngineOptions {
  /** SQLite file, or `:memory:`. */
  readonly path: string
  /** This node's id in the cluster definition. */
  readonly nodeId: string
  /** `normal` (default) survives a process crash; `full` fsyncs every group commit. */
  readonly durability?: Durability
  /** Hinted keys kept per target node before new hints are refused. Default 100,000. */
  readonly maxHintsPerTarget?: number
  /** Hints older than this are dropped and left to anti-entropy, ms. Default 7 days. */
  readonly maxHintAgeMs?: number
  /**
   * Write requests (a batch's writes are one) waiting for a group commit before
   * new ones are refused with KV_OVERLOADED. Default 10,000.
   */
  readonly maxQueuedRequests?: number
  /** Clock and timers (the group commit's immediate). Default the real ones; the simulator passes virtual time. */
  readonly time?: Time
  /** The node's failure domain, told in health(). Default none. */
  readonly zone?: string
  /** A new actor id for each open (the node's incarnation). Default 6 random bytes as hex (the simulator passes a seeded one). */
  readonly incarnationId?: () => string
  /** Bounds of the cache of recently used keys. */
  readonly cache?: RowCacheLimits
  /** Most bytes the database file may hold (SQLite's max_page_count); writes past it fail with KV_DISK_FULL. Default none (the disk's size). */
  readonly maxDbBytes?: number
  /** Told when the node turns unable to write for want of room (true), and when it writes again (false). Default nobody. */
  readonly onDiskFull?: (full: boolean) => void
  /** Largest file checked with SQLite's quick_check at open, bytes (larger ones open unchecked). Default 1 GiB. */
  readonly openCheckMaxBytes?: number
  /** Told of each damaged row found (once per key). Default nobody. */
  readonly onCorruptRow?: (row: CorruptRow) => void
  /** Told of each kept hint that cannot be delivered (its checksum fails: dropped; it does not decode: kept), each time it is met. Default nobody. */
  readonly onDamagedHint?: (hint: DamagedHintReport) => void
  /** SQLite's page cache and memory-mapped bytes. Default SQLITE_MEMORY. */
  readonly sqlite?: SqliteMemory
}

/** A kept hint that cannot be delivered, as the log tells it. */
export interface DamagedHintReport {
  readonly target: string
  readonly store: string
  /** The key, shown as text when it is printable (showKey). */
  readonly key: string
  readonly reason: string
  /** True when its checksum failed and it was dropped (anti-entropy repairs the key); false when it is kept (another build wrote it). */
  readonly dropped: boolean
}

/** The defaults of EngineOptions. */
export const ENGINE_DEFAULTS = {
  durability: 'normal',
  maxHintsPerTarget: 100_000,
  maxHintAgeMs: 7 * 24 * 3600 * 1000,
} as const

/** Counters the node app exports as metrics. */
export interface EngineStats {
  coordinated: number
  merged: number
  hintsStored: number
  hintsRefused: number
  hintsExpired: number
  itemErrors: number
  tombstonesReaped: number
  /** Partitions whose rows this node dropped (it left them, or entered them holding leftovers). */
  partitionsDropped: number
  /** Kept hints found undeliverable (checksum failed, or they do not decode). */
  hintsDamaged: number
}

/** A set with values left out (live versions keep an empty value), for comparing clocks. */
function heads(set: SiblingSet): Version[] {
  return set.map((v) => (v.value === null ? v : { ...v, value: EMPTY }))
}
const EMPTY = new Uint8Array(0)

const randomIncarnation = () => randomBytes(6).toString('hex')

/**
 * The storage engine: versioned values, hints and Merkle leaves in one SQLite
 * database. It implements the node protocol in-process; the node app serves it
 * over HTTP and the simulator calls it directly.
 */
export class StorageEngine implements NodeProtocol {
  readonly nodeId: string
  /** A fresh actor id at every open: a wiped or restored database can never reissue a dot. */
  /** This node's actor id: new at every open, and again before it drops a partition's rows (MEMBERSHIP rule 4). */
  get incarnation(): string {
    return this.actor
  }
  private actor: string
  private readonly newIncarnation: () => string
  private readonly zone: string | undefined
  readonly stats: EngineStats = {
    coordinated: 0,
    merged: 0,
    hintsStored: 0,
    hintsRefused: 0,
    hintsExpired: 0,
    itemErrors: 0,
    tombstonesReaped: 0,
    partitionsDropped: 0,
    hintsDamaged: 0,
  }
  private readonly db: Database.Database
  private readonly leaves: LeafStore
  private readonly rows: Rows
  private readonly hints: Hints
  private readonly sizes: StoreSizes
  private readonly writes: GroupCommit
  /** Whether writes find room, and how many were refused for want of it. */
  readonly disk: DiskState
  private readonly quota: Quota | null = null
  /** Damaged rows: found, reported, refused and marked for repair. */
  private readonly damage: Damage
  private readonly time: Time
  private readonly now: () => number
  private readonly maxHintsPerTarget: number
  private readonly maxHintAgeMs: number
  private readonly onDamagedHint: (hint: DamagedHintReport) => void
  private counter = 0
  private cluster: ClusterDef | null = null
  private ring: Placement | null = null
  /** What a definition installed (or an actor renewed) inside the open group replaced, to put back if the group rolls back. */
  private undoInstall: { cluster: ClusterDef | null; actor: string; moved: MovedAt } | null = null
  /** The actor was renewed for a damaged row in the open group. */
  private renewedInGroup = false
  /** When partitions last moved here: their tombstones wait a grace period before reaping. */
  private moved: MovedAt = MovedAt.none
  private closed = false
  private readonly sql

  constructor(options: EngineOptions) {
    this.nodeId = options.nodeId
    this.time = options.time ?? realTime
    this.now = () => this.time.now()
    this.maxHintsPerTarget = options.maxHintsPerTarget ?? ENGINE_DEFAULTS.maxHintsPerTarget
    this.maxHintAgeMs = options.maxHintAgeMs ?? ENGINE_DEFAULTS.maxHintAgeMs
    this.onDamagedHint = options.onDamagedHint ?? (() => {})
    this.db = new Database(options.path)
    this.disk = new DiskState(options.nodeId, options.onDiskFull)
    // Whatever fails once the file is open (a newer format, a file that is not SQLite, a corrupt
    // definition) closes it again, so the caller is left with no handle to close.
    try {
      applySchema(this.db, options.durability ?? ENGINE_DEFAULTS.durability, options.sqlite)
      if (options.maxDbBytes !== undefined) this.quota = new Quota(this.db, options.maxDbBytes)
      const atOpen = openCheck(this.db, options.path, options.openCheckMaxBytes ?? OPEN_CHECK_MAX_BYTES)
      this.damage = new Damage(this.db, this.nodeId, this.time, atOpen, options.onCorruptRow)
      this.sql = this.prepare()
      this.newIncarnation = options.incarnationId ?? randomIncarnation
      this.zone = options.zone
      this.actor = this.newIncarnation()
      const stored = this.sql.getMeta.get('cluster') as { v: string } | undefined
      if (stored) this.install(validateCluster(JSON.parse(stored.v)))
      this.moved = MovedAt.parse((this.sql.getMeta.get('moved-at') as { v: string } | undefined)?.v)
      this.leaves = new LeafStore(this.db)
      this.sizes = new StoreSizes(this.db)
      this.rows = new Rows(this.db, this.leaves, this.sizes, this.now, options.cache, (store, place, key, why, damaged) =>
        damaged ? this.damage.found(store, place, key, why) : this.damage.unreadable(store, place, key, why),
      )
      this.hints = new Hints(this.db)
      this.writes = new GroupCommit(
        this.db,
        {
          beforeCommit: () => {
            // No counter is stored: the incarnation is new at every open, so counters never need to survive one.
            this.rows.persist()
            for (const { store, place } of this.rows.takeReplaced()) this.leaves.recount(store, place.part, place.seg)
          },
          commit: () => {
            this.renewedInGroup = false
            if (this.rows.commit() > 0) this.disk.committed()
            this.leaves.commit()
            this.sizes.commit()
            this.hints.commit()
            this.undoInstall = null
          },
          rollback: () => {
            this.renewedInGroup = false
            this.rows.rollback()
            this.leaves.rollback()
            this.sizes.rollback()
            this.hints.rollback()
            // A definition installed by a job of the rolled-back group is not on disk: neither is it here.
            if (this.undoInstall) {
              const { cluster, actor, moved } = this.undoInstall
              this.undoInstall = null
              this.actor = actor
              this.moved = moved
              if (cluster) this.install(cluster)
              else {
                this.cluster = null
                this.ring = null
              }
            }
          },
          failed: (e) => this.disk.translate(e),
        },
        options.maxQueuedRequests,
        (fn) => this.time.setImmediate(fn),
      )
      this.damage.attach({ rows: this.rows, writes: this.writes, closed: () => this.closed, renew: () => this.renewForDamage() })
      this.sql.putMeta.run('incarnation', this.incarnation)
    } catch (e) {
      this.db.close()
      // Opening marks the leaves snapshot stale and stores the incarnation: with no room for that, the node cannot start.
      throw isDiskFull(e) ? new DiskFullError(options.nodeId, true) : e
    }
  }

  private prepare() {
    const db = this.db
    return {
      getMeta: db.prepare('SELECT v FROM meta WHERE k = ?'),
      putMeta: db.prepare('INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v'),
      scanAll: db.prepare('SELECT key, data, sum FROM kv WHERE store = ? AND part = ? AND (seg, key) > (?, ?) ORDER BY seg, key LIMIT ?'),
      scanSegment: db.prepare('SELECT key, data, sum FROM kv WHERE store = ? AND part = ? AND seg = ? AND key > ? ORDER BY key LIMIT ?'),
      partsWithRows: db.prepare('SELECT DISTINCT part FROM kv WHERE store = ?'),
      partitionKeys: db.prepare('SELECT key FROM kv WHERE store = ? AND part = ?'),
      tombstones: db.prepare('SELECT key, data, sum FROM kv WHERE store = ? AND part = ? AND tomb_ms IS NOT NULL AND tomb_ms < ? LIMIT ?'),
    }
  }

  private install(def: ClusterDef): void {
    this.cluster = def
    this.ring = new Placement(def)
  }

  /** Writes after close() would run their group commit on a closed database, outside any caller's reach. */
  private requireOpen(): void {
    if (this.closed) throw new NodeClosedError()
  }

  private requireCluster(): { cluster: ClusterDef; ring: Placement } {
    this.requireOpen()
    if (!this.cluster || !this.ring) throw new NoClusterError()
    return { cluster: this.cluster, ring: this.ring }
  }

  private placeOf(key: Uint8Array): Place {
    const q = (this.cluster as ClusterDef).partitions
    const h = keyHash(key)
    return { part: partitionOfHash(h, q), seg: segmentOfHash(h, q) }
  }

  private itemError(e: unknown): ItemResult<never> {
    if (!(e instanceof KvorumError)) throw e
    this.stats.itemErrors++
    return { ok: false, error: { code: e.code, message: e.message } }
  }

  /**
   * A store's own limits on what a write carries, checked here only (the
   * decoders check the protocol's ceilings), so a value over the store's
   * limit fails as one item on every face of the node.
   */
  private overLimit(store: StoreDef, value: Uint8Array | null): ItemResult<never> | null {
    if (value === null || value.length <= store.maxValueBytes) return null
    return this.itemError(new InvalidInputError(`value of ${value.length} bytes is over store ${store.name}'s limit of ${store.maxValueBytes}`))
  }

  /**
   * When a write expires: this node's clock plus the write's ttl (the writer's
   * clock may be off by more than a short ttl), or undefined for never.
   */
  private expiryOf(item: CoordinateItem): ItemResult<number | undefined> {
    const { ttlMs } = item
    if (ttlMs === undefined) return { ok: true, value: undefined }
    if (!Number.isInteger(ttlMs) || ttlMs < 1 || ttlMs > CLUSTER_LIMITS.maxTtlMs)
      return this.itemError(new InvalidInputError(`a write's ttlMs must be 1..${CLUSTER_LIMITS.maxTtlMs} (10 years), got ${ttlMs}`))
    return { ok: true, value: this.now() + ttlMs }
  }

  /** Inside a group commit: one write as the coordinating primary. */
  private coordinateItem(store: StoreDef, ring: Placement, item: CoordinateItem, version?: number): ItemResult<CoordinateResult> {
    const refused = this.overLimit(store, item.value)
    if (refused) return refused
    const place = this.placeOf(item.key)
    const stale = ownerError(this.cluster as ClusterDef, ring, this.nodeId, store, item.key, place.part, 'coordinate', version)
    if (stale) return stale
    const unsound = this.rows.refusal(store.name, place, item.key, 'coordinate')
    if (unsound) return this.itemError(unsound)
    const set = this.rows.read(store.name, place, item.key)
    const dot = { actor: this.actor, counter: this.counter + 1 }
    const expiry = this.expiryOf(item)
    if (!expiry.ok) return expiry
    const next = coordinatedSet(store.conflict, set, { ...item, expiresAt: expiry.value }, dot)
    if (next.length > store.maxSiblings) return this.itemError(TooManySiblingsError.forKey(showKey(item.key), next.length, store.maxSiblings))
    this.counter++
    this.rows.write(store.name, place, item.key, next)
    this.stats.coordinated++
    return { ok: true, value: { siblings: next, dot } }
  }

  /** Refuse a write that adds data once the quota is reached (deletes, reaping and hint delivery still run, and make room). */
  private requireRoom(): void {
    if (this.quota?.reached) throw this.disk.refuse()
  }

  async mergePut(storeName: string, items: readonly KeySet[]): Promise<ItemResult<null>[]> {
    const { cluster, ring } = this.requireCluster()
    const store = findStore(cluster, storeName)
    this.requireRoom()
    return this.writes.submit(() => items.map((item) => this.mergeItem(store, this.ring ?? ring, item)))
  }

  /** Inside a group commit: merge one set as a replica. */
  private mergeItem(store: StoreDef, ring: Placement, item: KeySet, version?: number): ItemResult<null> {
    for (const v of item.siblings) {
      const refused = this.overLimit(store, v.value)
      if (refused) return refused
    }
    const place = this.placeOf(item.key)
    const stale = ownerError(this.cluster as ClusterDef, ring, this.nodeId, store, item.key, place.part, 'merge', version)
    if (stale) return stale
    const unreadable = this.rows.refusal(store.name, place, item.key, 'merge')
    if (unreadable) return this.itemError(unreadable)
    // A merge replaces a damaged row with what it brings, which may lack versions this node coordinated: new dots get a new actor.
    if (this.rows.isDamaged(store.name, place, item.key)) this.renewForDamage()
    const set = this.rows.read(store.name, place, item.key)
    this.rows.write(store.name, place, item.key, resolveSets(store.conflict, set, item.siblings))
    this.stats.merged++
    return { ok: true, value: null }
  }

  /**
   * The one read path: a key's committed set as a stored read (its stored
   * bytes, decoded only if someone reads the set), or why it cannot be read.
   */
  private readItem(store: StoreDef, ring: Placement, key: Uint8Array, version?: number, role: Role = 'read'): ItemResult<SiblingSet> {
    try {
      this.requireOpen()
      const place = this.placeOf(key)
      const stale = ownerError(this.cluster as ClusterDef, ring, this.nodeId, store, key, place.part, role, version)
      if (stale) return stale
      return this.rows.committedRead(store.name, place, key)
    } catch (e) {
      if (isCorruptPage(e))
        return this.itemError(
          new DataCorruptError(
            `key ${showKey(key)} of store ${store.name} on node ${this.nodeId}: its database page is damaged (${(e as Error).message}); the other replicas serve it, and \`kvorum check\` lists the damage`,
          ),
        )
      return this.itemError(e)
    }
  }

  async get(storeName: string, keys: readonly Uint8Array[]): Promise<ItemResult<SiblingSet>[]> {
    const { cluster, ring } = this.requireCluster()
    const store = findStore(cluster, storeName)
    // Outside a batch (the repairer, the copy of a move): any replica a write goes to may be read,
    // a joiner too; reading more replicas than the read set can only add to the merge.
    return keys.map((key) => this.readItem(store, ring, key, undefined, 'merge'))
  }

  /**
   * The writes of a batch are one job of one group commit: it is queued, or
   * refused (overloaded, closed), as a whole, so a batch that fails as a
   * request applied none of its writes. The reads run after the commit: they
   * see the batch's own writes (a read beside the merge of a put the same
   * client just made would otherwise look stale and be repaired for nothing),
   * and a read that can no longer be served fails as an item, not the batch.
   */
  async batch(storeName: string, batch: StoreBatch): Promise<StoreBatchResults> {
    const { cluster, ring } = this.requireCluster()
    const store = findStore(cluster, storeName)
    const written = batch.coordinates.length + batch.merges.length === 0 ? { coordinates: [], merges: [] } : await this.batchWrites(store, batch)
    const now = this.ring ?? ring
    return { gets: batch.keys.map((key) => this.readItem(store, now, key, batch.version ?? 0)), ...written }
  }

  /**
   * A batch's writes, as one job. Without room (the quota reached before a
   * write that adds data, or SQLite finding none) none of them runs, and each
   * answers KV_DISK_FULL as an item: the batch's reads are still served.
   */
  private async batchWrites(store: StoreDef, batch: StoreBatch): Promise<Pick<StoreBatchResults, 'coordinates' | 'merges'>> {
    try {
      if (batch.merges.length > 0 || batch.coordinates.some((c) => c.value !== null)) this.requireRoom()
      return await this.writes.submit(() => {
        // The placement as of this job: a definition installed earlier in the same group applies.
        const now = this.ring as Placement
        return {
          coordinates: batch.coordinates.map((item) => this.coordinateItem(store, now, item, batch.version ?? 0)),
          merges: batch.merges.map((item) => this.mergeItem(store, now, item, batch.version ?? 0)),
        }
      })
    } catch (e) {
      if (!(e instanceof KvorumError && e.code === 'KV_DISK_FULL')) throw e
      return { coordinates: batch.coordinates.map(() => this.itemError(e)), merges: batch.merges.map(() => this.itemError(e)) }
    }
  }

  /** The on-demand check (Damage.check): SQLite's page check, then every row; damaged rows are marked for repair. */
  async check(options: { readonly full?: boolean } = {}): Promise<CheckReport> {
    this.requireOpen()
    return this.damage.check(options.full ?? false)
  }

  /** How the Merkle leaves were opened: from the last clean close, or rebuilt after a crash (keys, ms). */
  get leavesOpened(): LeavesOpened {
    return this.leaves.opened
  }

  /** Keys and bytes in the cache of recently used keys. */
  get cacheSize(): { keys: number; bytes: number } {
    return this.rows.cacheSize
  }

  async putHints(target: string, items: readonly HintItem[]): Promise<ItemResult<null>[]> {
    const { cluster } = this.requireCluster()
    const stores = new Map(items.map((it) => [it.store, findStore(cluster, it.store)]))
    this.requireRoom()
    return this.writes.submit(() => {
      let count = this.hints.count(target)
      return items.map((item): ItemResult<null> => {
        let merged: boolean
        try {
          merged = this.hints.mergeInto(target, item, (stores.get(item.store) as StoreDef).conflict, (h) => this.damagedHint(h))
        } catch (e) {
          return this.itemError(e)
        }
        if (!merged) {
          if (count >= this.maxHintsPerTarget) {
            this.stats.hintsRefused++
            return this.itemError(new HintBacklogFullError(target, this.maxHintsPerTarget))
          }
          this.hints.add(target, item.store, item.key, item.siblings, this.now())
          count++
        }
        this.stats.hintsStored++
        return { ok: true, value: null }
      })
    })
  }

  async listHints(target: string, limit: number, afterId: number): Promise<StoredHint[]> {
    this.requireCluster()
    if (!Number.isInteger(limit) || limit < 1 || limit > LIMITS.maxPageItems) throw new InvalidInputError(`hint page limit must be 1..${LIMITS.maxPageItems}`)
    const cutoff = this.now() - this.maxHintAgeMs
    // Expiry is upkeep: on a full disk the hints are still listed (delivering them frees room).
    let expired = 0
    try {
      expired = await this.writes.submit(() => this.hints.expire(cutoff))
    } catch (e) {
      if (!(e instanceof KvorumError && e.code === 'KV_DISK_FULL')) throw e
    }
    this.stats.hintsExpired += expired
    const damaged: DamagedHint[] = []
    const page = this.hints.list(target, afterId, limit, (h) => {
      this.damagedHint(h)
      if (h.damaged) damaged.push(h)
    })
    // Hints whose bytes are not what was written are dropped (a kept hint blocks reaping, and
    // anti-entropy repairs the key); on a full disk they wait for the next listing.
    if (damaged.length > 0) {
      try {
        await this.writes.submit(() => this.hints.drop(damaged))
      } catch (e) {
        if (!(e instanceof KvorumError && e.code === 'KV_DISK_FULL')) throw e
      }
    }
    return page
  }

  /** A kept hint that cannot be delivered: counted and told, never delivered or merged into. */
  private damagedHint(h: DamagedHint): void {
    this.stats.hintsDamaged++
    this.onDamagedHint({ target: h.target, store: h.store, key: showKey(h.key), reason: h.reason, dropped: h.damaged })
  }

  async deleteHints(target: string, acks: readonly { id: number; seq: number }[]): Promise<number> {
    this.requireCluster()
    return this.writes.submit(() => this.hints.remove(target, acks))
  }

  async hintTargets(): Promise<HintTarget[]> {
    return this.hints.targets()
  }

  private checkPartition(part: number): void {
    const q = (this.cluster as ClusterDef).partitions
    if (!Number.isInteger(part) || part < 0 || part >= q) throw new InvalidInputError(`partition must be 0..${q - 1}, got ${part}`)
  }

  async merkleRoots(storeName: string): Promise<Uint8Array> {
    const { cluster } = this.requireCluster()
    return this.leaves.roots(findStore(cluster, storeName).name, cluster.partitions)
  }

  async merkleBranches(storeName: string, partition: number): Promise<Uint8Array> {
    const { cluster } = this.requireCluster()
    this.checkPartition(partition)
    return branchesOf(this.leaves.partition(findStore(cluster, storeName).name, partition))
  }

  async merkleLeaves(storeName: string, partition: number, branch: number): Promise<Uint8Array> {
    const { cluster } = this.requireCluster()
    this.checkPartition(partition)
    if (!Number.isInteger(branch) || branch < 0 || branch >= BRANCHES) throw new InvalidInputError(`branch must be 0..${BRANCHES - 1}, got ${branch}`)
    const leaves = this.leaves.partition(findStore(cluster, storeName).name, partition)
    const size = BRANCH_FANOUT * HASH_BYTES
    return leaves.slice(branch * size, (branch + 1) * size)
  }

  async scan(storeName: string, req: ScanRequest): Promise<ScanPage> {
    const { cluster, ring } = this.requireCluster()
    const store = findStore(cluster, storeName)
    this.checkPartition(req.partition)
    const fenced = scanFenceError(cluster, ring, this.nodeId, store, req)
    if (fenced) throw fenced
    const afterSeg = req.after ? this.placeOf(req.after).seg : -1
    const afterKey = req.after ?? new Uint8Array(0)
    // With segments, read only those (the index is ordered by segment), so the
    // cost of a repair follows the differences, not the size of the partition.
    const segments = req.segments ? [...new Set(req.segments)].filter((x) => x >= afterSeg).sort((a, b) => a - b) : null
    const items: KeySet[] = []
    // Pages count the rows read, damaged ones too (left out of the answer): the next page starts after the last row read.
    let read = 0
    let last: Uint8Array | undefined
    const add = (rows: { key: Uint8Array; data: Uint8Array; sum: number | null }[]) => {
      read += rows.length
      last = rows[rows.length - 1]?.key ?? last
      for (const r of this.damage.readable(store.name, (key) => this.placeOf(key), rows))
        items.push(req.headsOnly ? { key: r.key, siblings: heads(r.siblings) } : r)
    }
    type Stored = { key: Uint8Array; data: Uint8Array; sum: number | null }
    if (!segments) {
      add(this.sql.scanAll.all(store.name, req.partition, afterSeg, afterKey, req.limit) as Stored[])
    } else {
      for (const seg of segments) {
        if (read >= req.limit) break
        const from = seg === afterSeg ? afterKey : new Uint8Array(0)
        add(this.sql.scanSegment.all(store.name, req.partition, seg, from, req.limit - read) as Stored[])
      }
    }
    return read >= req.limit && last ? { items, next: last } : { items }
  }

  async listTombstones(storeName: string, req: TombstoneRequest): Promise<KeySet[]> {
    const { cluster } = this.requireCluster()
    const store = findStore(cluster, storeName)
    this.checkPartition(req.partition)
    const rows = this.sql.tombstones.all(store.name, req.partition, req.beforeMs, req.limit) as { key: Uint8Array; data: Uint8Array; sum: number | null }[]
    return this.damage.readable(store.name, (key) => this.placeOf(key), rows).map((r) => ({ key: r.key, siblings: heads(r.siblings) }))
  }

  async reap(storeName: string, items: readonly KeySet[]): Promise<number> {
    const { cluster } = this.requireCluster()
    // No tombstone is reaped while the cluster moves, or in a partition that moved within the
    // store's grace period (MEMBERSHIP rule 2), whatever a repairer's view says.
    if (cluster.move) return 0
    const store = findStore(cluster, storeName)
    return this.writes.submit(() => {
      let reaped = 0
      for (const item of items) {
        const place = this.placeOf(item.key)
        if (this.moved.movedWithin(place.part, this.now(), store.tombstoneGraceMs)) continue
        const set = this.rows.read(store.name, place, item.key)
        if (set.length === 0 || !isGone(set, this.now()) || !sameSet(set, item.siblings)) continue
        // The grace counts on this node's clock, which stamped the tombstone time: a repairer whose
        // clock runs ahead must not make a young tombstone look old (found by the clock nemesis).
        const since = this.rows.tombMs(store.name, place, item.key)
        if (since === null || since > this.now() - store.tombstoneGraceMs) continue
        this.rows.write(store.name, place, item.key, [])
        reaped++
      }
      this.stats.tombstonesReaped += reaped
      return reaped
    })
  }

  async getCluster(): Promise<ClusterDef | null> {
    return this.cluster
  }

  async putCluster(def: ClusterDef): Promise<void> {
    this.requireOpen()
    const valid = validateCluster(def)
    // Checked now, to refuse early, and again inside the group commit against what the node holds
    // then: two definitions of one version in flight at once must not both be installed.
    checkInstall(this.cluster, valid)
    // Inside the group commit, and installed there: a write queued in the same group before this
    // job is seen by the drop, and one queued after it is checked against the new placement.
    await this.writes.submit(() => {
      const held = this.cluster
      checkInstall(held, valid)
      const newer = held !== null && valid.version > held.version
      const drops = newer ? partitionsToDrop(held, valid, this.nodeId, (store) => this.storedParts(store)) : []
      this.undoInstall ??= { cluster: this.cluster, actor: this.actor, moved: this.moved }
      if (drops.length > 0) this.dropPartitions(drops)
      this.sql.putMeta.run('cluster', JSON.stringify(valid))
      if (newer) {
        this.moved = this.moved.after(held, valid, this.now(), Math.max(0, ...valid.stores.map((s) => s.tombstoneGraceMs)))
        this.sql.putMeta.run('moved-at', this.moved.toJSON())
      }
      this.install(valid)
    })
  }

  /** The partitions of `store` this node holds rows of, committed or staged in the open group. */
  private storedParts(store: string): Set<number> {
    const stored = new Set((this.sql.partsWithRows.all(store) as { part: number }[]).map((r) => r.part))
    for (const part of this.rows.stagedParts(store)) stored.add(part)
    return stored
  }

  /**
   * Inside a group commit: remove every row of these partitions. A new
   * incarnation first (MEMBERSHIP rule 4): if this node regains a partition,
   * its new dots can never be mistaken for ones whose versions it dropped.
   */
  private dropPartitions(drops: readonly { store: string; part: number }[]): void {
    this.renewIncarnation()
    for (const { store, part } of drops) {
      const keys = [...(this.sql.partitionKeys.all(store, part) as { key: Uint8Array }[]).map((r) => r.key), ...this.rows.stagedKeys(store, part)]
      for (const key of keys) this.rows.write(store, this.placeOf(key), key, [])
      this.stats.partitionsDropped++
    }
  }

  /**
   * Inside a group commit, when a damaged row is marked or replaced: a new
   * actor id (the row may have held dots of the current one, which new dots
   * of that actor would cover), once per group.
   */
  private renewForDamage(): void {
    if (this.renewedInGroup) return
    this.renewedInGroup = true
    this.renewIncarnation()
  }

  /** Inside a group commit: a new actor id, put back if the group rolls back. */
  private renewIncarnation(): void {
    this.undoInstall ??= { cluster: this.cluster, actor: this.actor, moved: this.moved }
    this.actor = this.newIncarnation()
    this.sql.putMeta.run('incarnation', this.actor)
  }

  async health(options?: HealthOptions): Promise<NodeHealth> {
    if (options?.ready) this.requireCluster()
    let keys = 0
    let bytes = 0
    for (const size of this.sizes.all.values()) {
      keys += size.keys
      bytes += size.bytes
    }
    const health = { id: this.nodeId, incarnation: this.incarnation, clusterVersion: this.cluster?.version ?? 0, keys, bytes }
    return this.zone ? { ...health, zone: this.zone } : health
  }

  /** Keys and bytes per store, kept as rows change (no scan). */
  get storeSizes(): ReadonlyMap<string, StoreSize> {
    return this.sizes.all
  }

  /** How the store sizes were had at open: from the last clean close, or counted (ms). */
  get sizesOpened(): SizesOpened {
    return this.sizes.opened
  }

  /** Keys hinted per target node, kept as hints come and go (no scan). */
  get hintsPending(): ReadonlyMap<string, number> {
    return this.hints.pending
  }

  /** Size of the database file, pages x page size (0 once closed). */
  get databaseBytes(): number {
    if (this.closed) return 0
    return (this.db.pragma('page_count', { simple: true }) as number) * (this.db.pragma('page_size', { simple: true }) as number)
  }

  /** Damaged rows found since the open. */
  get corrupt(): CorruptRows {
    return this.damage.corrupt
  }

  /** SQLite's page check at open, and what it mended. */
  get atOpen(): OpenCheck {
    return this.damage.atOpen
  }

  /** The database quota (EngineOptions.maxDbBytes) in whole pages, bytes; 0 without one. */
  get quotaBytes(): number {
    return this.quota?.maxBytes ?? 0
  }

  /** The version of the cluster definition held, 0 before one. */
  get clusterVersion(): number {
    return this.cluster?.version ?? 0
  }

  /** Writes waiting for the next group commit. */
  get queueDepth(): number {
    return this.writes.depth
  }

  /** Group commits so far (each one SQLite transaction). */
  get groupCommits(): number {
    return this.writes.groups
  }

  /** Commit what is queued and close the database. */
  close(): void {
    if (this.closed) return
    this.writes.flush()
    this.closed = true
    try {
      this.leaves.snapshot()
      this.sizes.snapshot()
    } catch (e) {
      // No room for the snapshots: the next open rebuilds the leaves and counts the sizes, as after a crash.
      if (!isDiskFull(e)) throw e
    }
    this.db.close()
  }

  /**
   * Stop as a crash (kill -9) would: the writes queued for the next group
   * commit are dropped unapplied (their callers never hear back), and the
   * database closes without the leaves snapshot, so the next open rebuilds the
   * leaves from the rows as after a real crash. Returns how many writes were
   * dropped. For the simulator.
   */
  abandon(): number {
    if (this.closed) return 0
    this.closed = true
    const dropped = this.writes.abandon()
    this.db.close()
    return dropped
  }
}
