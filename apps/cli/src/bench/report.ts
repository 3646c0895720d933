import type { MetricsSnapshot } from '@kvorum/client'
import type { Ceilings } from './ceilings.js'
import type { BenchConfig } from './config.js'
import type { PeerResult } from './etcd.js'
import { Histogram } from './histogram.js'
import type { WorkloadResult } from './workload.js'

/** The intra-region targets an open-loop run is held to (p50, p99, p99.9 in ms). */
export const OPEN_LOOP_TARGETS = { p50Ms: 2, p99Ms: 10, p999Ms: 15 } as const

/** An open-loop run: the schedule, what was achieved, and the latency targets (from each operation's intended start). */
function openLoopJson(rate: number, result: WorkloadResult, all: Histogram) {
  const t = OPEN_LOOP_TARGETS
  return {
    rate,
    achievedOpsPerSec: result.pace.issued / Math.max(result.pace.scheduledS, 1e-9),
    late: result.pace.late,
    targets: t,
    met: all.quantile(0.5) < t.p50Ms && all.quantile(0.99) < t.p99Ms && all.quantile(0.999) < t.p999Ms,
  }
}

/** The peer's figures over its slices, as the benchmark reports them beside Kvorum's. */
function peerJson(cfg: BenchConfig, peer: PeerResult & { version: string }, throughput: number, p99Ms: number, cpuUsPerOp: number | null) {
  const opsPerSec = peer.ops / Math.max(peer.seconds, 1e-9)
  const peerCpu = peer.cpuSeconds === null || peer.ops + peer.errors === 0 ? null : (peer.cpuSeconds * 1e6) / (peer.ops + peer.errors)
  const peerP99 = peer.hist.quantile(0.99)
  return {
    name: 'etcd',
    version: peer.version,
    durability: cfg.durability === 'full' ? 'fsync on every commit (default)' : '--unsafe-no-fsync',
    seconds: peer.seconds,
    opsPerSec,
    errors: peer.errors,
    p50Ms: peer.hist.quantile(0.5),
    p99Ms: peerP99,
    p999Ms: peer.hist.quantile(0.999),
    cpuUsPerOp: peerCpu,
    ratios: {
      throughput: throughput / opsPerSec,
      p99: peerP99 > 0 ? p99Ms / peerP99 : null,
      cpuPerOp: peerCpu !== null && cpuUsPerOp !== null ? cpuUsPerOp / peerCpu : null,
    },
  }
}

/** The benchmark's result as one JSON document. */
export function reportJson(
  cfg: BenchConfig,
  result: WorkloadResult,
  ceilings: Ceilings | null,
  sdk: MetricsSnapshot,
  peer: (PeerResult & { version: string }) | null = null,
) {
  const operations: Record<
    string,
    { count: number; errors: number; opsPerSec: number; p50Ms: number; p99Ms: number; p999Ms: number; maxMs: number; errorCodes: Record<string, number> }
  > = {}
  let total = 0
  let failed = 0
  for (const [name, s] of Object.entries(result.ops)) {
    if (s.count === 0) continue
    total += s.count - s.errors
    failed += s.errors
    operations[name] = {
      count: s.count,
      errors: s.errors,
      opsPerSec: s.count / result.seconds,
      p50Ms: s.hist.quantile(0.5),
      p99Ms: s.hist.quantile(0.99),
      p999Ms: s.hist.quantile(0.999),
      maxMs: s.hist.maxMs,
      errorCodes: s.errorCodes,
    }
  }
  const throughput = total / result.seconds
  const cpuUsPerOp = result.cpuSeconds === null || total + failed === 0 ? null : (result.cpuSeconds * 1e6) / (total + failed)
  const lost = result.increments ? Math.max(0, result.increments.acknowledged - result.increments.readBack) : 0
  const all = Object.values(result.ops).reduce((h, s) => {
    h.merge(s.hist)
    return h
  }, new Histogram())
  return {
    config: cfg,
    throughput,
    operations,
    failed,
    lost,
    increments: result.increments ?? null,
    ceilings,
    cpuUsPerOp,
    p50Ms: all.quantile(0.5),
    p99Ms: all.quantile(0.99),
    p999Ms: all.quantile(0.999),
    openLoop: cfg.rate === null ? null : openLoopJson(cfg.rate, result, all),
    peer: peer ? peerJson(cfg, peer, throughput, all.quantile(0.99), cpuUsPerOp) : null,
    ratios: ceilings
      ? {
          fanout: throughput / ceilings.fanout.opsPerSec,
          roundTrip: throughput / ceilings.roundTrip.opsPerSec,
          batch: ceilings.batch ? throughput / ceilings.batch.opsPerSec : null,
          batchCpu: cpuUsPerOp !== null && ceilings.batch?.cpuUsPerOp ? ceilings.batch.cpuUsPerOp / cpuUsPerOp : null,
          // CPU per operation of the fan-out ceiling over Kvorum's: throughput's ratio on a machine with nothing else running.
          fanoutCpu: cpuUsPerOp !== null && ceilings.fanout.cpuUsPerOp !== null ? ceilings.fanout.cpuUsPerOp / cpuUsPerOp : null,
        }
      : null,
    sdk: {
      batches: sdk.batches,
      itemsPerBatch: sdk.batches ? sdk.batchedItems / sdk.batches : 0,
      readRepairs: sdk.readRepairs,
      hintsWritten: sdk.hintsWritten,
      siblingsSeenMax: sdk.siblingsSeenMax,
      quorumFailures: sdk.quorumFailures,
      timeouts: sdk.timeouts,
      /** Nodes the SDK sent requests to. */
      nodes: Object.keys(sdk.nodes).length,
    },
    sdkRssMiB: process.memoryUsage().rss / 1024 / 1024,
    machine: { node: process.version, platform: `${process.platform}/${process.arch}` },
  }
}

const f = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })

export function printReport(r: ReturnType<typeof reportJson>): void {
  const c = r.config
  console.log(`\nworkload ${c.workload}, concurrency ${c.concurrency}, ${c.records} records, ${c.valueBytes}-byte values, durability ${c.durability}`)
  console.log('op       count      ops/s     p50 ms   p99 ms   p99.9 ms  errors')
  for (const [name, o] of Object.entries(r.operations)) {
    console.log(
      `${name.padEnd(8)} ${f(o.count).padStart(9)} ${f(o.opsPerSec).padStart(10)} ${f(o.p50Ms, 2).padStart(9)} ${f(o.p99Ms, 2).padStart(8)} ${f(o.p999Ms, 2).padStart(10)}  ${o.errors}${o.errors ? ` ${JSON.stringify(o.errorCodes)}` : ''}`,
    )
  }
  console.log(`total    ${f(r.throughput).padStart(20)} ops/s${r.cpuUsPerOp !== null ? `, ${f(r.cpuUsPerOp)} µs CPU per op (client and nodes)` : ''}`)
  if (r.openLoop) {
    const o = r.openLoop
    const t = o.targets
    console.log(
      `open loop at ${f(o.rate)} ops/s (latency from each operation's intended start): ${f(o.achievedOpsPerSec)} issued/s, ${f(o.late)} started over 1 ms late`,
    )
    console.log(
      `  p50 ${f(r.p50Ms, 2)} ms (target < ${t.p50Ms}), p99 ${f(r.p99Ms, 2)} ms (< ${t.p99Ms}), p99.9 ${f(r.p999Ms, 2)} ms (< ${t.p999Ms}): ${o.met ? 'met' : 'NOT met'}`,
    )
  }
  if (r.ceilings) {
    const cl = r.ceilings
    console.log(`\nceilings measured in this run:`)
    console.log(
      `  no-op HTTP fan-out (3 PUTs, answer after 2): ${f(cl.fanout.opsPerSec)} ops/s, p99 ${f(cl.fanout.p99Ms, 2)} ms  -> Kvorum at ${f(r.ratios?.fanout ?? 0, 2)}x`,
    )
    if (cl.fanout.cpuUsPerOp !== null && r.ratios?.fanoutCpu)
      console.log(`    fan-out CPU per op ${f(cl.fanout.cpuUsPerOp)} µs -> Kvorum at ${f(r.ratios.fanoutCpu, 2)}x by CPU per op`)
    if (cl.batch) {
      const b = cl.batch
      console.log(
        `  no-op nodes, same SDK and batching (${f(b.itemsPerBatch, 1)} ops per request): ${f(b.opsPerSec)} ops/s, p99 ${f(b.p99Ms, 2)} ms  -> Kvorum at ${f(r.ratios?.batch ?? 0, 2)}x`,
      )
      if (b.cpuUsPerOp !== null && r.ratios?.batchCpu)
        console.log(`    batch ceiling CPU per op ${f(b.cpuUsPerOp)} µs -> Kvorum at ${f(r.ratios.batchCpu, 2)}x by CPU per op`)
    }
    console.log(
      `  one no-op HTTP round trip:                   ${f(cl.roundTrip.opsPerSec)} req/s, p99 ${f(cl.roundTrip.p99Ms, 2)} ms  -> Kvorum at ${f(r.ratios?.roundTrip ?? 0, 2)}x`,
    )
    console.log(`  raw SQLite (${c.durability}): ${f(cl.sqlite.upsertsPerSec)} upserts/s, ${f(cl.sqlite.readsPerSec)} point reads/s`)
  }
  console.log(
    `\nSDK: ${f(r.sdkRssMiB)} MiB resident, ${f(r.sdk.itemsPerBatch, 1)} operations per node request, ${r.sdk.readRepairs} read repairs, ${r.sdk.hintsWritten} hints, most siblings seen ${r.sdk.siblingsSeenMax}`,
  )
  if (r.peer) {
    const p = r.peer
    console.log(`\n${p.name} ${p.version} (3 members, ${p.durability}), the same mix in slices between Kvorum's:`)
    console.log(
      `  ${f(p.opsPerSec)} ops/s, p50 ${f(p.p50Ms, 2)} ms, p99 ${f(p.p99Ms, 2)} ms, p99.9 ${f(p.p999Ms, 2)} ms${p.cpuUsPerOp !== null ? `, ${f(p.cpuUsPerOp)} µs CPU per op` : ''}${p.errors ? `, ${p.errors} errors` : ''}`,
    )
    console.log(
      `  Kvorum at ${f(p.ratios.throughput, 2)}x its throughput, ${p.ratios.p99 === null ? '-' : f(p.ratios.p99, 2)}x its p99${p.ratios.cpuPerOp === null ? '' : `, ${f(p.ratios.cpuPerOp, 2)}x its CPU per op`}`,
    )
  }
  if (r.increments) console.log(`increments acknowledged ${r.increments.acknowledged}, read back ${r.increments.readBack}, lost ${r.lost}`)
  if (r.failed || r.lost) console.log(`FAILED: ${r.failed} operations failed, ${r.lost} lost`)
}
