import {
  type ConflictMode,
  type KeySet,
  type ReplicaFailure,
  type SiblingSet,
  KvorumError,
  QuorumNotMetError,
  assert,
  keyHash,
  resolveSets,
  segmentOfHash,
} from '@kvorum/core'
import { checkAborted } from './call.js'
import { failureOf } from './replica-errors.js'
import type { Runtime } from './runtime.js'
import type { RequestOptions } from './transport.js'
import { upFirst } from './verdicts.js'

/** What one partition's scan needs: where, from how many replicas, and how. */
export interface PartitionScanSpec {
  readonly store: string
  /** The store's n (placement looks the definition's own up first). */
  readonly n: number
  readonly conflict: ConflictMode
  readonly partition: number
  /** Replicas read at once (more than the partition has: all of them); a replica that fails is replaced by the next of the partition's readers. */
  readonly replicas: number
  /**
   * Read the partition's writers instead of its readers in read-new: the
   * old and the new primaries both (O ∪ N, readers first), as a write's
   * coordinator may be an old one; in other stages the readers already are
   * every node that holds each write. Default false.
   */
  readonly writers?: boolean
  /** Resume after this key (the scan's order, not byte order: see below). */
  readonly after: Uint8Array | undefined
  /** Keys per scan page; with `adaptive`, of the first page, and then sized to the values seen. */
  readonly pageSize: number
  /** Size later pages to about PAGE_BYTES_TARGET from the bytes per key seen so far (MIN..MAX_ADAPTIVE_PAGE keys). */
  readonly adaptive: boolean
  /** Leave values out (live versions come back with empty values). */
  readonly headsOnly: boolean
  readonly signal: AbortSignal | undefined
  readonly request: RequestOptions
}

/** Pages read per replica and partition at most (with 1,000-key pages, 10 million keys). */
export const MAX_PAGES_PER_REPLICA = 10_000

/** What an adaptive page aims at, bytes: small values get large pages (fewer round trips), large ones small pages. */
const PAGE_BYTES_TARGET = 4 * 1024 * 1024
const MIN_ADAPTIVE_PAGE = 10
const MAX_ADAPTIVE_PAGE = 1000

function setBytes(set: SiblingSet): number {
  let n = 0
  for (const v of set) n += 32 + (v.value?.length ?? 0) + 16 * Object.keys(v.context).length
  return n
}

/** Keys of the next page: about PAGE_BYTES_TARGET at the bytes per key seen so far. */
export function adaptivePageSize(bytesSeen: number, keysSeen: number): number {
  assert(keysSeen > 0, 'a page size is adapted after some keys were seen')
  const perKey = Math.max(1, bytesSeen / keysSeen)
  return Math.max(MIN_ADAPTIVE_PAGE, Math.min(MAX_ADAPTIVE_PAGE, Math.floor(PAGE_BYTES_TARGET / perKey)))
}

interface Item extends KeySet {
  readonly seg: number
}

/**
 * A node scans a partition in (Merkle segment, key bytes) order, the order of
 * its index. Both parts follow from the key alone, so every replica lists a
 * partition in the same order, and the streams of several replicas merge
 * like sorted lists.
 */
function compareItems(a: Item, b: Item): number {
  return a.seg - b.seg || Buffer.compare(a.key, b.key)
}

/** One replica's pages of one partition, a page buffered at a time. */
class ReplicaStream {
  private buffer: Item[] = []
  private next: Uint8Array | undefined
  private finished = false
  private pages = 0
  private keysSeen = 0
  private bytesSeen = 0

  constructor(
    readonly node: string,
    after: Uint8Array | undefined,
    private readonly partitions: number,
    /** The definition version the scan was routed with, for the node's fencing. */
    private readonly version: number,
  ) {
    this.next = after
  }

  get head(): Item | undefined {
    return this.buffer[0]
  }

  get needsPage(): boolean {
    return this.buffer.length === 0 && !this.finished
  }

  shift(): Item {
    const item = this.buffer.shift()
    assert(item, 'a stream is shifted only when it has a head')
    return item
  }

  private limit(spec: PartitionScanSpec): number {
    return spec.adaptive && this.keysSeen > 0 ? adaptivePageSize(this.bytesSeen, this.keysSeen) : spec.pageSize
  }

  async fill(rt: Runtime, spec: PartitionScanSpec): Promise<void> {
    assert(
      this.pages < MAX_PAGES_PER_REPLICA,
      `partition ${spec.partition} of store ${spec.store} has more than ${MAX_PAGES_PER_REPLICA} pages on ${this.node}`,
    )
    this.pages++
    const page = await rt.view.nodeClient(this.node).scan(spec.request, spec.store, {
      partition: spec.partition,
      limit: this.limit(spec),
      headsOnly: spec.headsOnly,
      version: this.version,
      ...(this.next ? { after: this.next } : {}),
    })
    this.buffer = page.items.map((it) => ({ ...it, seg: segmentOfHash(keyHash(it.key), this.partitions) }))
    this.keysSeen += page.items.length
    for (const it of page.items) this.bytesSeen += it.key.length + setBytes(it.siblings)
    this.next = page.next
    if (!page.next) this.finished = true
  }
}

/**
 * The keys of one partition with their sets merged across `replicas` of its
 * readers (resolveSets under the store's mode, as a read merges replies),
 * tombstones included, in scan order. Memory: one page per replica read. A
 * replica that fails is replaced by a spare reader that resumes after the
 * last key handed out; with no spare left the scan fails with
 * KV_QUORUM_NOT_MET naming each replica's error. A replica that refuses the
 * scan as routed with an old definition (KV_STALE_METADATA) fails it at
 * once: every reader may be wrong, so the caller refreshes and resumes.
 */
export async function* partitionSets(rt: Runtime, spec: PartitionScanSpec): AsyncGenerator<KeySet> {
  const { placement } = rt.view
  const version = rt.view.cluster.version
  const ref = { name: spec.store, n: spec.n }
  // Only in read-new do the readers (the new primaries) leave out a write's coordinator; before it they are the old primaries, which hold every write.
  const both = spec.writers && placement.stage === 'read-new'
  const readers = upFirst(both ? placement.writers(spec.partition, ref) : placement.readers(spec.partition, ref), (n) => rt.nodes.isUp(n))
  const want = Math.min(spec.replicas, readers.length)
  const spares = readers.slice(want)
  const failures: ReplicaFailure[] = []
  let last = spec.after
  let active = readers.slice(0, want).map((node) => new ReplicaStream(node, last, placement.partitions, version))
  for (;;) {
    checkAborted(spec.signal, `listing of store ${spec.store}`)
    active = await refill(rt, spec, active, { spares, failures, last, want, version })
    const heads = active.filter((s) => s.head)
    if (heads.length === 0) return
    const first = heads.map((s) => s.head as Item).reduce((a, b) => (compareItems(a, b) <= 0 ? a : b))
    const sets: SiblingSet[] = []
    for (const s of heads) if (compareItems(s.head as Item, first) === 0) sets.push(s.shift().siblings)
    last = first.key
    yield { key: first.key, siblings: resolveSets(spec.conflict, ...sets) }
  }
}

/** A partition scan's state across refills: spare readers, failures so far, the last key handed out, replicas wanted. */
interface ScanState {
  readonly spares: string[]
  readonly failures: ReplicaFailure[]
  readonly last: Uint8Array | undefined
  readonly want: number
  readonly version: number
}

/** Give every stream with an empty buffer its next page; replace the streams that fail (not the stale: see partitionSets). */
async function refill(rt: Runtime, spec: PartitionScanSpec, streams: ReplicaStream[], state: ScanState): Promise<ReplicaStream[]> {
  const { spares, failures, last, want } = state
  let current = streams
  // Each round either fills every stream or uses up a spare, so it ends within (spares + 1) rounds.
  for (let round = 0; round <= spares.length + want; round++) {
    const failed: ReplicaStream[] = []
    await Promise.all(
      current
        .filter((s) => s.needsPage)
        .map((s) =>
          s.fill(rt, spec).catch((e: unknown) => {
            if (!(e instanceof KvorumError) || e.code === 'KV_STALE_METADATA') throw e
            failures.push(failureOf(s.node, e))
            failed.push(s)
          }),
        ),
    )
    if (failed.length === 0) return current
    current = current.filter((s) => !failed.includes(s))
    for (let i = 0; i < failed.length; i++) {
      const spare = spares.shift()
      if (spare === undefined) {
        const got = current.length
        throw new QuorumNotMetError(`listing of partition ${spec.partition} of store ${spec.store}`, want, got, failures, 'replicas')
      }
      current.push(new ReplicaStream(spare, last, rt.view.placement.partitions, state.version))
    }
  }
  throw new QuorumNotMetError(`listing of partition ${spec.partition} of store ${spec.store}`, want, 0, failures, 'replicas')
}
