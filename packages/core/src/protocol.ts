import type { ClusterDef } from './cluster.js'
import type { WireError } from './error-codes.js'
import type { Dot, VersionVector } from './clock.js'
import type { SiblingSet } from './versions.js'

/** A per-item failure inside a batch, as `{code, message}`: the wire form of an error. */
export type ItemError = WireError

/** The outcome of one item of a batch. */
export type ItemResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: ItemError }

/** A write for the coordinating primary: value (null deletes) and the context the writer saw. */
export interface CoordinateItem {
  readonly key: Uint8Array
  readonly value: Uint8Array | null
  readonly context: VersionVector
  /** Writer's wall clock, ms; used only by `lww` stores. */
  readonly timestamp: number
  /**
   * The written version's time to live, ms (1..10 years): the coordinating
   * node stamps `expiresAt` = its own clock + this, so a writer's clock never
   * decides the expiry. Absent: never expires.
   */
  readonly ttlMs?: number | undefined
}

/** What the coordinating primary answers for one write: the key's new sibling set and the dot it gave the write. */
export interface CoordinateResult {
  readonly siblings: SiblingSet
  /** The new version's dot: the writer's own version is the one with this dot. */
  readonly dot: Dot
}

/** A key and the sibling set to merge into it. */
export interface KeySet {
  readonly key: Uint8Array
  readonly siblings: SiblingSet
}

/** A hint a fallback keeps for an unreachable primary. */
export interface HintItem extends KeySet {
  readonly store: string
}

/** A stored hint; `seq` changes whenever the hint is merged into again. */
export interface StoredHint extends HintItem {
  readonly id: number
  readonly seq: number
  readonly createdMs: number
}

/** Reads, writes to coordinate and sets to merge for one store, sent to one node as one request. */
export interface StoreBatch {
  readonly keys: readonly Uint8Array[]
  readonly coordinates: readonly CoordinateItem[]
  readonly merges: readonly KeySet[]
  /**
   * The cluster definition version the sender routed the batch with. A node
   * refuses its items for a partition that moved after that version
   * (KV_STALE_METADATA, before applying anything). 0 or absent: fenced for
   * every partition that ever moved.
   */
  readonly version?: number
}

/** The answers to a StoreBatch, section by section in item order. */
export interface StoreBatchResults {
  readonly gets: readonly ItemResult<SiblingSet>[]
  readonly coordinates: readonly ItemResult<CoordinateResult>[]
  readonly merges: readonly ItemResult<null>[]
}

/** Hint backlog for one target node. */
export interface HintTarget {
  readonly target: string
  readonly count: number
  readonly oldestMs: number
}

/** A page of a partition scan. */
export interface ScanPage {
  readonly items: readonly KeySet[]
  /** Key to pass as `after` for the next page; absent on the last page. */
  readonly next?: Uint8Array
}

export interface ScanRequest {
  readonly partition: number
  /** Only keys in these Merkle segments; all when absent. */
  readonly segments?: readonly number[]
  readonly after?: Uint8Array
  readonly limit: number
  /** Leave values out (live versions come back with empty values): for comparing clocks cheaply. */
  readonly headsOnly?: boolean
  /**
   * The sender's cluster definition version (a listing sends it): the node
   * refuses the scan with KV_STALE_METADATA when it is below the partition's
   * placement version or the node is in none of the partition's write sets
   * (fencing, MEMBERSHIP rule 5). Absent: no fencing (repair's and tools' scans).
   */
  readonly version?: number
}

/** Which tombstones to list for reaping. */
export interface TombstoneRequest {
  readonly partition: number
  /** Only keys deleted (on this node) before this time, ms. */
  readonly beforeMs: number
  readonly limit: number
}

/** How `/health` is asked. */
export interface HealthOptions {
  /**
   * Ask for readiness, not liveness: refused with KV_NO_CLUSTER (503 over
   * HTTP) until the node holds a cluster definition. Default false: the
   * node answers as long as it runs.
   */
  readonly ready?: boolean | undefined
}

/** What `/health` tells. */
export interface NodeHealth {
  readonly id: string
  readonly incarnation: string
  readonly clusterVersion: number
  /** The failure domain the node was started in (`kvorum-node --zone`), if any. */
  readonly zone?: string
  /** Keys the node stores, all stores together (tombstones included). */
  readonly keys?: number
  /** Key and value bytes the node stores, all stores together: what a move copies, not the file's size. */
  readonly bytes?: number
}

/**
 * The operations a storage node offers. The storage engine implements it
 * in-process, the node app serves it over HTTP, and the SDK's transports
 * implement it as clients; the route table in routes.ts declares each
 * operation's HTTP form once for all of them. Whole-request failures throw a
 * KvorumError; per-key failures (a store's limits among them) come back as
 * ItemResults. Writes to coordinate travel only in store batches.
 */
export interface NodeProtocol {
  /** As a replica: merge each set into what is stored. */
  mergePut(store: string, items: readonly KeySet[]): Promise<ItemResult<null>[]>
  /** The stored sibling set of each key (empty when absent). */
  get(store: string, keys: readonly Uint8Array[]): Promise<ItemResult<SiblingSet>[]>
  /** get, coordinatePut and mergePut of one store in one call (its writes share one group commit). */
  batch(store: string, batch: StoreBatch): Promise<StoreBatchResults>
  /** Keep sets for an unreachable target node, merging with any hint already kept for the same key. */
  putHints(target: string, items: readonly HintItem[]): Promise<ItemResult<null>[]>
  /** Oldest hints for a target, after hint id `afterId`. */
  listHints(target: string, limit: number, afterId: number): Promise<StoredHint[]>
  /** Delete hints the target acknowledged; a hint whose seq changed since is kept. Returns how many went. */
  deleteHints(target: string, acks: readonly { id: number; seq: number }[]): Promise<number>
  /** Backlog per target node. */
  hintTargets(): Promise<HintTarget[]>
  /** Merkle roots of every partition of a store, packed (Q x 8 bytes). */
  merkleRoots(store: string): Promise<Uint8Array>
  /** The 32 branch hashes of one partition, packed. */
  merkleBranches(store: string, partition: number): Promise<Uint8Array>
  /** The 32 leaf hashes under one branch, packed. */
  merkleLeaves(store: string, partition: number, branch: number): Promise<Uint8Array>
  /** Keys and sets of a partition, in key order, a page at a time. */
  scan(store: string, req: ScanRequest): Promise<ScanPage>
  /** Keys of a partition whose every version is a tombstone older than `beforeMs` (heads only). */
  listTombstones(store: string, req: TombstoneRequest): Promise<KeySet[]>
  /**
   * Remove keys whose stored set is still exactly the given tombstones (same
   * dots, all tombstones); a key that changed since is kept. Returns how many went.
   */
  reap(store: string, items: readonly KeySet[]): Promise<number>
  /** The cluster definition the node holds, or null before `cluster init`. */
  getCluster(): Promise<ClusterDef | null>
  /** Install a cluster definition; an older or equal version than the held one is refused. */
  putCluster(def: ClusterDef): Promise<void>
  /** Who the node is and the cluster version it holds; with `ready`, refused (KV_NO_CLUSTER) before it holds a definition. */
  health(options?: HealthOptions): Promise<NodeHealth>
}
