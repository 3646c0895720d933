/**
 * A node's fixed cost per request: one real kvorum-node process (built dist),
 * answering store batches of one read sent by fetch at concurrency 16. Prints
 * the node's CPU per request (user + system, from /proc), so builds can be
 * compared close in time. Needs `npx tsc -b` first.
 *
 *   npx tsx --conditions=kvorum-source test/bench/request-cost.ts [--requests 20000]
 */
import { parseArgs } from 'node:util'
import { encodeStoreBatch, utf8 } from '@kvorum/core'
import { cpuSeconds } from '../../apps/cli/src/bench/cpu.js'
import { startCluster } from '../support/process-cluster.js'

const { values } = parseArgs({ options: { requests: { type: 'string' } } })
const requests = Number(values.requests ?? 20_000)
const cluster = await startCluster({ nodes: 1, stores: [{ name: 'bench', n: 1, r: 1, w: 1 }] })
try {
  const node = [...cluster.nodes.values()][0]
  const pid = node?.proc?.pid
  if (!node || pid === undefined) throw new Error('assertion failed: the node did not start')
  const url = `${cluster.seeds[0]}/v1/stores/bench/batch`
  const body = encodeStoreBatch({ keys: [utf8('user000000000001')], coordinates: [], merges: [], version: cluster.def.version })
  const headers = { 'content-type': 'application/octet-stream', authorization: `Bearer ${cluster.token}` }
  const run = async (n: number) => {
    let next = 0
    const worker = async () => {
      while (next++ < n) {
        const res = await fetch(url, { method: 'POST', body, headers })
        if (res.status !== 200) throw new Error(`status ${res.status}: ${await res.text()}`)
        await res.arrayBuffer()
      }
    }
    await Promise.all(Array.from({ length: 16 }, worker))
  }
  await run(Math.min(5000, requests))
  const cpu0 = cpuSeconds(pid)
  const t0 = performance.now()
  await run(requests)
  const cpu1 = cpuSeconds(pid)
  const seconds = (performance.now() - t0) / 1000
  const nodeUs = cpu0 === null || cpu1 === null ? null : Math.round(((cpu1 - cpu0) * 1e6) / requests)
  console.log(JSON.stringify({ requests, nodeCpuUsPerRequest: nodeUs, perSec: Math.round(requests / seconds) }))
} finally {
  await cluster.close()
}
