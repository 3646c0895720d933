/**
 * A node's memory with many keys, under load: load N keys into 3 real nodes
 * (straight into the replicas), then run a 50/50 read/update workload on
 * them through the SDK, and report each node's peak resident memory, split
 * into anonymous (heap, caches) and file-backed (the database's mapped pages)
 * parts, and the SDK's.
 *   npx tsx --conditions=kvorum-source test/bench/node-memory.ts --keys 1000000 [--seconds 30] [--node-args "--cache-mib 32"]
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { type KeySet, type NodeDef, utf8 } from '@kvorum/core'
import { startCluster } from '../support/process-cluster.js'
import { mixedLoad } from './mixed-load.js'

const { values } = parseArgs({
  options: {
    keys: { type: 'string', default: '1000000' },
    seconds: { type: 'string', default: '30' },
    concurrency: { type: 'string', default: '64' },
    'value-size': { type: 'string', default: '512' },
    'node-args': { type: 'string', default: '' },
  },
})
const keys = Number(values.keys)
const seconds = Number(values.seconds)
const valueBytes = Number(values['value-size'])
const nodeArgs = (values['node-args'] as string).split(' ').filter((a) => a.length > 0)

interface Rss {
  total: number
  anon: number
  file: number
}

function rss(pid: number): Rss {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024
  return { total: kib('VmRSS'), anon: kib('RssAnon'), file: kib('RssFile') + kib('RssShmem') }
}

const cluster = await startCluster({ partitions: 256, nodeArgs })
const pids = [...cluster.nodes.values()].map((n) => n.proc?.pid as number)
const peak = pids.map(() => ({ total: 0, anon: 0, file: 0 }))
const sample = () => {
  for (const [i, pid] of pids.entries()) {
    const r = rss(pid)
    const p = peak[i] as Rss
    p.total = Math.max(p.total, r.total)
    p.anon = Math.max(p.anon, r.anon)
    p.file = Math.max(p.file, r.file)
  }
}
const sampler = setInterval(sample, 500)
try {
  const kv = await cluster.connect({ requestTimeoutMs: 30_000, timeoutMs: 30_000 })
  const T = { timeoutMs: 60_000 }
  const node = (id: string) => cluster.def.nodes.find((n) => n.id === id) as NodeDef
  const started = performance.now()
  const batch = 1000
  for (let b = 0; b < keys / batch; b++) {
    const items: KeySet[] = Array.from({ length: batch }, (_, i) => {
      const k = b * batch + i
      const value = new Uint8Array(valueBytes).fill(k % 251)
      return { key: utf8(`key-${k}`), siblings: [{ dot: { actor: 'load', counter: k + 1 }, context: {}, timestamp: 1, value }] }
    })
    await Promise.all(['n1', 'n2', 'n3'].map((id) => cluster.transport.node(node(id)).mergePut(T, 'default', items)))
    if (b % 100 === 99) process.stderr.write(`loaded ${(b + 1) * batch} keys in ${((performance.now() - started) / 1000).toFixed(0)} s\n`)
  }
  sample()
  const loaded = peak.map((p) => ({ ...p }))
  const store = kv.store<Uint8Array>('default')
  const { ops, errors } = await mixedLoad(store, keys, valueBytes, Number(values.concurrency), seconds)
  sample()
  const f = (r: Rss) => `${r.total.toFixed(0)} MiB (anon ${r.anon.toFixed(0)}, file ${r.file.toFixed(0)})`
  console.log(`node flags: ${nodeArgs.join(' ') || '(defaults)'}; ${keys} keys of ${valueBytes} bytes on each of 3 nodes`)
  console.log(`after the load:  ${loaded.map(f).join(' | ')}`)
  console.log(`peak under load: ${peak.map(f).join(' | ')}`)
  console.log(
    `workload: ${ops} ops in ${seconds} s (${(ops / seconds).toFixed(0)} ops/s), ${errors} errors; SDK ${(process.memoryUsage().rss / 1024 / 1024).toFixed(0)} MiB`,
  )
} finally {
  clearInterval(sampler)
  await cluster.close()
}
