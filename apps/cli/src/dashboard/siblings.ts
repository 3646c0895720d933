import type { HttpTransport, Kvorum } from '@kvorum/client'
import { type ClusterDef, Placement } from '@kvorum/core'

/** Keys read per poll at most: one scan page of one partition. */
export const SIBLING_SAMPLE_KEYS = 50
/** Histogram buckets: 1, 2, 3, 4 and "5 or more" versions per read. */
export const SIBLING_BUCKETS = 5

/** Versions per read over the keys this dashboard has sampled (live keys only). */
export interface SiblingHistogram {
  /** counts[i]: reads that saw i + 1 versions; the last bucket holds every read of SIBLING_BUCKETS or more. */
  readonly counts: readonly number[]
  readonly reads: number
  /** Partitions sampled so far (the sample walks the ring one partition a poll). */
  readonly partitionsSampled: number
}

/**
 * Reads a sample of real keys through the SDK and counts the versions
 * (siblings) each read saw: one page of keys of one partition per poll, found
 * by a heads-only scan of a replica, then read with a quorum like any client
 * read. A dashboard sees no application's reads, so this is a sample of the
 * data as clients read it, walking the ring.
 */
export class SiblingSampler {
  private readonly counts = new Array<number>(SIBLING_BUCKETS).fill(0)
  private reads = 0
  private next = 0
  private sampled = 0

  constructor(
    private readonly kv: Kvorum,
    private readonly transport: HttpTransport,
    private readonly requestTimeoutMs: number,
  ) {}

  /** Sample the next partition of the first store; failures leave the histogram as it was (the next poll tries the next partition). */
  async sample(def: ClusterDef, up: ReadonlySet<string>): Promise<void> {
    const store = def.stores[0]
    if (!store) return
    const q = this.next % def.partitions
    this.next = q + 1
    const holder = new Placement(def).readers(q, store).find((id) => up.has(id))
    const node = def.nodes.find((n) => n.id === holder)
    if (!node) return
    const page = await this.transport
      .node(node)
      .scan({ timeoutMs: this.requestTimeoutMs }, store.name, { partition: q, limit: SIBLING_SAMPLE_KEYS, headsOnly: true })
    this.sampled++
    if (page.items.length === 0) return
    const results = await this.kv.store(store.name, { codec: 'bytes' }).getMany(
      page.items.map((i) => i.key),
      { timeoutMs: this.requestTimeoutMs * 2 },
    )
    for (const r of results.values()) {
      if (!r.ok || !r.value.found || r.value.siblings < 1) continue
      const bucket = Math.min(r.value.siblings, SIBLING_BUCKETS) - 1
      this.counts[bucket] = (this.counts[bucket] ?? 0) + 1
      this.reads++
    }
  }

  histogram(): SiblingHistogram {
    return { counts: [...this.counts], reads: this.reads, partitionsSampled: this.sampled }
  }
}
