import {
  type KeySet, type SiblingSet, type StoreDef, BRANCH_FANOUT, HASH_BYTES, diffHashes, encodeAckResults, encodeKeySets, encodeKeys,
  encodeScanPage, encodeSetResults, resolveSets, sameSet, toHex,
} from '@kvorum/core'
import type { Kvorum } from './client.js'
import { RateLimiter } from './rate-limit.js'

/** Options of a repair pass. */
export interface RepairOptions {
  /** Only this store. Default every store. */
  readonly store?: string
  /** Only these partitions. Default all. */
  readonly partitions?: readonly number[]
  /** Partitions compared at once. Default 2. */
  readonly concurrency?: number
  /** Keys repaired per second at most, so foreground traffic keeps its latency. Default 10,000. */
  readonly maxKeysPerSecond?: number
  /** Reap tombstones that every primary holds past the store's grace period. Default true. */
  readonly reapTombstones?: boolean
  /** Called after each partition. */
  readonly onProgress?: (progress: RepairReport) => void
}

/** What a pass did; bytes count request and response bodies. */
export interface RepairReport {
  partitionsTotal: number
  partitionsDone: number
  /** Partitions with fewer than two replicas reachable, left for the next pass. */
  partitionsSkipped: number
  /** Partitions whose replicas' Merkle roots differed. */
  partitionsDiffering: number
  keysCompared: number
  keysRepaired: number
  replicaWrites: number
  tombstonesReaped: number
  bytesExchanged: number
  durationMs: number
}

const PAGE = 1000
const BATCH = 256

/**
 * Merkle anti-entropy, driven by the SDK: for each partition, compare the
 * replicas' roots, then branches, then leaves; list keys and clocks only
 * under differing leaves; fetch full versions only for keys whose clocks
 * differ; write the merged sets to the replicas that lack them. Cost follows
 * the number of differences, not the data.
 */
export class AntiEntropy {
  constructor(private readonly kv: Kvorum) {}

  async repair(options: RepairOptions = {}): Promise<RepairReport> {
    const started = Date.now()
    const stores = options.store ? [this.kv.cluster.stores.find((s) => s.name === options.store)] : this.kv.cluster.stores
    const q = this.kv.cluster.partitions
    const parts = options.partitions ?? Array.from({ length: q }, (_, p) => p)
    const report: RepairReport = { partitionsTotal: parts.length * stores.length, partitionsDone: 0, partitionsSkipped: 0, partitionsDiffering: 0, keysCompared: 0, keysRepaired: 0, replicaWrites: 0, tombstonesReaped: 0, bytesExchanged: 0, durationMs: 0 }
    const limiter = new RateLimiter(options.maxKeysPerSecond ?? 10_000)
    const hinted = options.reapTombstones === false ? null : await this.hintedTargets(report)
    for (const store of stores) {
      if (!store) throw new Error(`assertion failed: unknown store ${options.store}`)
      const roots = await this.roots(store, report)
      const queue = [...parts]
      const worker = async () => {
        for (let p = queue.shift(); p !== undefined; p = queue.shift()) {
          await this.partition(store, p, roots, report, limiter, hinted)
          report.partitionsDone++
          report.durationMs = Date.now() - started
          options.onProgress?.({ ...report })
        }
      }
      await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 2) }, worker))
    }
    report.durationMs = Date.now() - started
    return report
  }

  private t() {
    return { timeoutMs: Math.max(this.kv.requestTimeoutMs, 5000) }
  }

  /** Targets some node keeps hints for: their keys are not reaped while a late hint could bring old versions back. */
  private async hintedTargets(report: RepairReport): Promise<Set<string> | null> {
    const out = new Set<string>()
    for (const node of this.kv.cluster.nodes) {
      try {
        const targets = await this.kv.client(node.id).hintTargets(this.t())
        report.bytesExchanged += JSON.stringify(targets).length
        for (const t of targets) out.add(t.target)
      } catch {
        return null // a node we cannot ask might hold hints: reap nothing this pass
      }
    }
    return out
  }

  private async roots(store: StoreDef, report: RepairReport): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>()
    await Promise.all(this.kv.cluster.nodes.map(async (node) => {
      try {
        const roots = await this.kv.client(node.id).merkleRoots(this.t(), store.name)
        report.bytesExchanged += roots.length
        out.set(node.id, roots)
      } catch {
        // unreachable: its partitions are repaired among the others, or skipped
      }
    }))
    return out
  }

  private async partition(store: StoreDef, p: number, roots: Map<string, Uint8Array>, report: RepairReport, limiter: RateLimiter, hinted: Set<string> | null): Promise<void> {
    const primaries = this.kv.ring.primaries(p, store.n)
    const replicas = primaries.filter((id) => roots.has(id))
    if (replicas.length < 2) {
      if (primaries.length > 1) report.partitionsSkipped++
      return
    }
    const rootOf = (id: string) => (roots.get(id) as Uint8Array).subarray(p * HASH_BYTES, (p + 1) * HASH_BYTES)
    const differs = replicas.some((id) => diffHashes(rootOf(id), rootOf(replicas[0] as string)).length > 0)
    if (differs) {
      report.partitionsDiffering++
      const segments = await this.differingSegments(store, p, replicas, report)
      if (segments.length > 0) await this.repairSegments(store, p, replicas, segments, report, limiter)
    }
    if (hinted && replicas.length === primaries.length && !primaries.some((id) => hinted.has(id))) await this.reap(store, p, replicas, report)
  }

  /** Walk branches then leaves; return the segments where replicas disagree. */
  private async differingSegments(store: StoreDef, p: number, replicas: string[], report: RepairReport): Promise<number[]> {
    const branches = await Promise.all(replicas.map((id) => this.kv.client(id).merkleBranches(this.t(), store.name, p)))
    report.bytesExchanged += branches.reduce((n, b) => n + b.length, 0)
    const differentBranches = unionDiffs(branches)
    const segments: number[] = []
    for (const b of differentBranches) {
      const leaves = await Promise.all(replicas.map((id) => this.kv.client(id).merkleLeaves(this.t(), store.name, p, b)))
      report.bytesExchanged += leaves.reduce((n, l) => n + l.length, 0)
      for (const leaf of unionDiffs(leaves)) segments.push(b * BRANCH_FANOUT + leaf)
    }
    return segments
  }

  /** Keys and clocks under the segments, per replica. */
  private async heads(store: StoreDef, p: number, replicas: string[], segments: number[], report: RepairReport): Promise<Map<string, { key: Uint8Array; sets: Map<string, SiblingSet> }>> {
    const keys = new Map<string, { key: Uint8Array; sets: Map<string, SiblingSet> }>()
    await Promise.all(replicas.map(async (id) => {
      let after: Uint8Array | undefined
      for (let page = 0; page < 100_000; page++) {
        const res = await this.kv.client(id).scan(this.t(), store.name, { partition: p, segments, limit: PAGE, headsOnly: true, ...(after ? { after } : {}) })
        report.bytesExchanged += encodeScanPage(res).length
        for (const item of res.items) {
          const hex = toHex(item.key)
          const entry = keys.get(hex) ?? { key: item.key, sets: new Map<string, SiblingSet>() }
          entry.sets.set(id, item.siblings)
          keys.set(hex, entry)
        }
        if (!res.next) break
        after = res.next
      }
    }))
    return keys
  }

  private async repairSegments(store: StoreDef, p: number, replicas: string[], segments: number[], report: RepairReport, limiter: RateLimiter): Promise<void> {
    const keys = await this.heads(store, p, replicas, segments, report)
    report.keysCompared += keys.size
    // For each key: the merged clock, which replicas lack it, and one source per missing dot.
    const fetch = new Map<string, Uint8Array[]>()
    const plans: { key: Uint8Array; hex: string; lacking: string[] }[] = []
    for (const [hex, { key, sets }] of keys) {
      const all = replicas.map((id) => sets.get(id) ?? [])
      const merged = resolveSets(store.conflict, ...all)
      const lacking = replicas.filter((id) => !sameSet(sets.get(id) ?? [], merged))
      if (lacking.length === 0) continue
      plans.push({ key, hex, lacking })
      for (const source of sources(merged, replicas, sets)) fetch.set(source, [...(fetch.get(source) ?? []), key])
    }
    if (plans.length === 0) return
    const full = new Map<string, SiblingSet[]>()
    for (const [source, wanted] of fetch) {
      for (let i = 0; i < wanted.length; i += BATCH) {
        const chunk = wanted.slice(i, i + BATCH)
        const res = await this.kv.client(source).get(this.t(), store.name, chunk)
        report.bytesExchanged += encodeKeys(chunk).length + encodeSetResults(res).length
        res.forEach((r, j) => {
          if (!r.ok) return
          const hex = toHex(chunk[j] as Uint8Array)
          full.set(hex, [...(full.get(hex) ?? []), r.value])
        })
      }
    }
    const writes = new Map<string, KeySet[]>()
    for (const plan of plans) {
      const merged = resolveSets(store.conflict, ...(full.get(plan.hex) ?? []))
      if (merged.length === 0) continue
      for (const id of plan.lacking) writes.set(id, [...(writes.get(id) ?? []), { key: plan.key, siblings: merged }])
      report.keysRepaired++
    }
    for (const [id, items] of writes) {
      for (let i = 0; i < items.length; i += BATCH) {
        const chunk = items.slice(i, i + BATCH)
        await limiter.take(chunk.length)
        const body = encodeKeySets(chunk)
        const res = await this.kv.client(id).mergePut(this.t(), store.name, chunk)
        report.bytesExchanged += body.length + encodeAckResults(res).length
        report.replicaWrites += res.filter((r) => r.ok).length
      }
    }
  }

  /** Reap tombstones every replica has held past the grace period, with the same dots everywhere. */
  private async reap(store: StoreDef, p: number, replicas: string[], report: RepairReport): Promise<void> {
    const beforeMs = Date.now() - store.tombstoneGraceMs
    const lists = await Promise.all(replicas.map((id) => this.kv.client(id).listTombstones(this.t(), store.name, { partition: p, beforeMs, limit: PAGE })))
    report.bytesExchanged += lists.reduce((n, l) => n + encodeKeySets(l).length, 0)
    const [first, ...rest] = lists as [KeySet[], ...KeySet[][]]
    const others = rest.map((l) => new Map(l.map((k) => [toHex(k.key), k.siblings])))
    const agreed = first.filter((k) => others.every((m) => sameSet(m.get(toHex(k.key)) ?? [], k.siblings)))
    if (agreed.length === 0) return
    // Ask for hints again now, not only at the start of the pass: a pass can outlast the grace
    // period, and a hint stored since it began may hold versions these tombstones cover, which
    // would come back when it is delivered after the reap.
    const hinted = await this.hintedTargets(report)
    if (!hinted || replicas.some((id) => hinted.has(id))) return
    const counts = await Promise.all(replicas.map((id) => this.kv.client(id).reap(this.t(), store.name, agreed)))
    report.bytesExchanged += encodeKeySets(agreed).length * replicas.length
    report.tombstonesReaped += Math.max(...counts)
  }
}

/** Indices where the packed hash runs of the replicas do not all agree. */
function unionDiffs(runs: Uint8Array[]): number[] {
  const out = new Set<number>()
  const [first, ...rest] = runs as [Uint8Array, ...Uint8Array[]]
  for (const r of rest) for (const i of diffHashes(first, r)) out.add(i)
  return [...out].sort((a, b) => a - b)
}

/** A few replicas that between them hold every dot of the merged set (greedy). */
function sources(merged: SiblingSet, replicas: string[], sets: Map<string, SiblingSet>): string[] {
  const need = new Set(merged.map((v) => `${v.dot.actor}:${v.dot.counter}`))
  const out: string[] = []
  while (need.size > 0) {
    let best = ''
    let bestCount = 0
    for (const id of replicas) {
      const count = (sets.get(id) ?? []).filter((v) => need.has(`${v.dot.actor}:${v.dot.counter}`)).length
      if (count > bestCount) {
        best = id
        bestCount = count
      }
    }
    if (!best) break
    out.push(best)
    for (const v of sets.get(best) ?? []) need.delete(`${v.dot.actor}:${v.dot.counter}`)
  }
  return out
}
