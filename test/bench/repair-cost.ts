/**
 * Anti-entropy cost at scale: load N keys into 3 real nodes (straight into
 * the replicas, as if they had long agreed), make k keys differ on one
 * replica, and time one repair pass and its bytes; also the nodes' memory.
 *   npx tsx test/bench/repair-cost.ts --keys 1000000 --diffs 10,100,1000
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { type KeySet, type NodeDef, utf8 } from '@kvorum/core'
import { startCluster } from '../support/process-cluster.js'

const { values } = parseArgs({
  options: {
    keys: { type: 'string', default: '1000000' },
    diffs: { type: 'string', default: '10,100,1000' },
    'value-size': { type: 'string', default: '512' },
  },
})
const keys = Number(values.keys)
const diffs = (values.diffs as string).split(',').map(Number)
const valueBytes = Number(values['value-size'])

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
}

const cluster = await startCluster({ partitions: 256 })
try {
  const kv = await cluster.connect({ requestTimeoutMs: 30_000 })
  const T = { timeoutMs: 60_000 }
  const node = (id: string) => cluster.def.nodes.find((n) => n.id === id) as NodeDef
  const value = new Uint8Array(valueBytes).fill(7)
  const started = performance.now()
  const batch = 1000
  for (let b = 0; b < keys / batch; b++) {
    const items: KeySet[] = Array.from({ length: batch }, (_, i) => {
      const k = b * batch + i
      return { key: utf8(`key-${k}`), siblings: [{ dot: { actor: 'load', counter: k + 1 }, context: {}, timestamp: 1, value }] }
    })
    await Promise.all(['n1', 'n2', 'n3'].map((id) => cluster.transport.node(node(id)).mergePut(T, 'default', items)))
    if (b % 100 === 99) process.stderr.write(`loaded ${(b + 1) * batch} keys in ${((performance.now() - started) / 1000).toFixed(0)} s\n`)
  }
  const rss = [...cluster.nodes.values()].map((n) => rssMiB(n.proc?.pid as number))
  console.log(
    `loaded ${keys} keys (${valueBytes}-byte values) into 3 replicas in ${((performance.now() - started) / 1000).toFixed(0)} s; node RSS ${rss.map((r) => r.toFixed(0)).join(' / ')} MiB`,
  )
  const quiet = await kv.repair()
  console.log(`converged pass: ${quiet.keysRepaired} keys repaired, ${quiet.bytesExchanged} bytes, ${(quiet.durationMs / 1000).toFixed(2)} s`)
  for (const k of diffs) {
    const diverged: KeySet[] = Array.from({ length: k }, (_, i) => ({
      key: utf8(`key-${Math.floor((i * keys) / k)}`),
      siblings: [{ dot: { actor: `d${k}`, counter: i + 1 }, context: { load: keys }, timestamp: 2, value }],
    }))
    await cluster.transport.node(node('n1')).mergePut(T, 'default', diverged)
    const report = await kv.repair()
    console.log(
      `| ${keys} | ${k} | ${report.keysRepaired} | ${report.bytesExchanged} | ${(report.bytesExchanged / k).toFixed(0)} | ${(report.durationMs / 1000).toFixed(2)} s |`,
    )
  }
} finally {
  await cluster.close()
}
