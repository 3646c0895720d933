/**
 * The SDK's memory at scale: start N real nodes with P partitions, connect one
 * SDK, run a 50/50 read/update workload through it, and report the process's
 * heap and resident memory before connecting, after connecting and under load.
 *   npx tsx --conditions=kvorum-source test/bench/sdk-memory.ts --nodes 64 --partitions 4096 [--seconds 20]
 */
import { parseArgs } from 'node:util'
import { startCluster } from '../support/process-cluster.js'
import { mixedLoad } from './mixed-load.js'

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '64' },
    partitions: { type: 'string', default: '4096' },
    seconds: { type: 'string', default: '20' },
    keys: { type: 'string', default: '100000' },
    concurrency: { type: 'string', default: '64' },
  },
})
const nodes = Number(values.nodes)
const partitions = Number(values.partitions)
const seconds = Number(values.seconds)
const keys = Number(values.keys)

const mib = (b: number) => (b / 1024 / 1024).toFixed(0)
function memory(): { heap: number; rss: number } {
  ;(globalThis as { gc?: () => void }).gc?.()
  const m = process.memoryUsage()
  return { heap: m.heapUsed, rss: m.rss }
}

const started = performance.now()
// Small caches: 64 nodes share this machine's memory, and only the SDK is measured.
const cluster = await startCluster({ nodes, partitions, nodeArgs: ['--cache-mib', '4', '--log-level', 'warn'] })
process.stderr.write(`${nodes} nodes up in ${((performance.now() - started) / 1000).toFixed(0)} s\n`)
try {
  const before = memory()
  const kv = await cluster.connect({ requestTimeoutMs: 10_000, timeoutMs: 10_000 })
  const connected = memory()
  const store = kv.store<Uint8Array>('default')
  let peak = connected
  const sampler = setInterval(() => {
    const m = process.memoryUsage()
    peak = { heap: Math.max(peak.heap, m.heapUsed), rss: Math.max(peak.rss, m.rss) }
  }, 250)
  const { ops, errors } = await mixedLoad(store, keys, 512, Number(values.concurrency), seconds)
  clearInterval(sampler)
  const after = memory()
  const stats = kv.stats()
  console.log(`${nodes} nodes, ${partitions} partitions, n=3: one SDK in this process (heap used / resident, MiB)`)
  console.log(`  before connecting ${mib(before.heap)} / ${mib(before.rss)}; connected ${mib(connected.heap)} / ${mib(connected.rss)}`)
  console.log(`  under load: peak ${mib(peak.heap)} / ${mib(peak.rss)}; after (gc) ${mib(after.heap)} / ${mib(after.rss)}`)
  console.log(
    `  connecting added ${mib(connected.heap - before.heap)} MiB of heap; load ${ops} ops in ${seconds} s, ${errors} errors, ${(stats.batchedItems / Math.max(1, stats.batches)).toFixed(1)} ops per request`,
  )
} finally {
  await cluster.close()
}
