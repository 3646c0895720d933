/**
 * The storage side of workload A, without HTTP: three engines on files (`full`
 * durability by default), driven the way the SDK drives nodes. Each round is
 * one tick of 64 concurrent operations: every node gets one batch (coordinates
 * of the updates it is primary for, the merges of the previous round's
 * coordinated sets, and reads), encoded and decoded with the wire codec as a
 * node does. Prints CPU per operation (this process, user + system) so builds
 * can be compared close in time.
 *
 *   npx tsx --conditions=kvorum-source test/bench/write-cost.ts [--rounds 3000] [--records 10000] [--durability full|normal]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import {
  type ClusterDef,
  type CoordinateItem,
  type KeySet,
  type NodeDef,
  Placement,
  decodeStoreBatch,
  decodeStoreBatchResults,
  encodeStoreBatch,
  encodeStoreBatchResults,
  initialAssignment,
  keyHash,
  partitionOfHash,
  setContext,
  storeDef,
  type VersionVector,
} from '@kvorum/core'
import { StorageEngine } from '@kvorum/storage'
import { ScrambledZipfian } from '../../apps/cli/src/bench/zipf.js'

const { values } = parseArgs({
  options: { rounds: { type: 'string' }, records: { type: 'string' }, durability: { type: 'string' }, warmup: { type: 'string' } },
})
const rounds = Number(values.rounds ?? 3000)
const warmup = Number(values.warmup ?? 500)
const records = Number(values.records ?? 10_000)
const durability = values.durability === 'normal' ? 'normal' : 'full'
const OPS_PER_ROUND = 64
const VALUE_BYTES = 512

const nodes: NodeDef[] = ['n1', 'n2', 'n3'].map((id) => ({ id, url: `mem://${id}` }))
const store = storeDef({ name: 'bench', n: 3, r: 2, w: 2 })
const cluster: ClusterDef = { version: 1, partitions: 256, nodes, assignment: initialAssignment(nodes, 256), stores: [store] }
const ring = new Placement(cluster)
const dir = mkdtempSync(join(tmpdir(), 'kvorum-write-cost-'))
const engines = new Map(nodes.map((n) => [n.id, new StorageEngine({ path: join(dir, `${n.id}.db`), nodeId: n.id, durability })]))
const keyOf = (i: number) => new TextEncoder().encode(`user${String(i).padStart(12, '0')}`)
const replicasOf = (key: Uint8Array) => ring.writers(partitionOfHash(keyHash(key), cluster.partitions), store)
function value(): Uint8Array {
  const v = new Uint8Array(VALUE_BYTES)
  for (let i = 0; i < VALUE_BYTES; i += 4) v[i] = (Math.random() * 256) | 0
  return v
}

interface Pending {
  keys: Uint8Array[]
  /** Key indexes of `keys`, for the contexts. */
  read: number[]
  coordinates: CoordinateItem[]
  written: number[]
  merges: KeySet[]
}
const empty = (): Pending => ({ keys: [], read: [], coordinates: [], written: [], merges: [] })

/** One node request as the node serves it: decode, run, encode; and the SDK's decode of the answer. */
async function send(id: string, p: Pending) {
  const bytes = encodeStoreBatch({ keys: p.keys, coordinates: p.coordinates, merges: p.merges, version: cluster.version })
  const engine = engines.get(id) as StorageEngine
  const answer = encodeStoreBatchResults(await engine.batch(store.name, decodeStoreBatch(bytes)))
  return decodeStoreBatchResults(answer)
}

async function main() {
  for (const e of engines.values()) await e.putCluster(cluster)
  // Load every key on its three replicas.
  for (let i = 0; i < records; i += 200) {
    const per = new Map(nodes.map((n) => [n.id, empty()]))
    for (let k = i; k < Math.min(records, i + 200); k++) {
      const key = keyOf(k)
      per.get(replicasOf(key)[0] as string)?.coordinates.push({ key, value: value(), context: {}, timestamp: Date.now() })
    }
    const next = new Map(nodes.map((n) => [n.id, empty()]))
    for (const [id, p] of per) {
      const res = await send(id, p)
      res.coordinates.forEach((r, j) => {
        if (!r.ok) throw new Error(`load failed: ${r.error.message}`)
        const key = (p.coordinates[j] as CoordinateItem).key
        for (const other of replicasOf(key).slice(1)) next.get(other)?.merges.push({ key, siblings: r.value.siblings })
      })
    }
    await Promise.all([...next].map(([id, p]) => send(id, p)))
  }

  const zipf = new ScrambledZipfian(records)
  const contexts = new Map<number, VersionVector>()
  let merges = new Map(nodes.map((n) => [n.id, [] as KeySet[]]))
  let cpu0 = process.cpuUsage()
  let t0 = performance.now()
  let ops = 0
  for (let round = 0; round < warmup + rounds; round++) {
    if (round === warmup) {
      cpu0 = process.cpuUsage()
      t0 = performance.now()
      ops = 0
    }
    const per = new Map(nodes.map((n) => [n.id, { ...empty(), merges: merges.get(n.id) ?? [] }]))
    for (let o = 0; o < OPS_PER_ROUND; o++) {
      const k = zipf.next()
      const key = keyOf(k)
      const replicas = replicasOf(key)
      if (Math.random() < 0.5) {
        for (const id of replicas.slice(0, 2)) {
          per.get(id)?.keys.push(key)
          per.get(id)?.read.push(k)
        }
      } else {
        const p = per.get(replicas[0] as string) as Pending
        p.coordinates.push({ key, value: value(), context: contexts.get(k) ?? {}, timestamp: Date.now() })
        p.written.push(k)
      }
    }
    merges = new Map(nodes.map((n) => [n.id, [] as KeySet[]]))
    const answers = await Promise.all([...per].map(async ([id, p]) => ({ id, p, res: await send(id, p) })))
    for (const { p, res } of answers) {
      res.coordinates.forEach((r, j) => {
        const key = (p.coordinates[j] as CoordinateItem).key
        if (!r.ok) throw new Error(`write failed: ${r.error.message}`)
        contexts.set(p.written[j] as number, setContext(r.value.siblings))
        for (const other of replicasOf(key).slice(1)) merges.get(other)?.push({ key, siblings: r.value.siblings })
      })
      res.gets.forEach((r, j) => {
        if (!r.ok) throw new Error(`read failed: ${r.error.message}`)
        contexts.set(p.read[j] as number, setContext(r.value))
      })
    }
    ops += OPS_PER_ROUND
  }
  const cpu = process.cpuUsage(cpu0)
  const seconds = (performance.now() - t0) / 1000
  console.log(
    JSON.stringify({
      durability,
      ops,
      cpuUsPerOp: Math.round((cpu.user + cpu.system) / ops),
      userUsPerOp: Math.round(cpu.user / ops),
      systemUsPerOp: Math.round(cpu.system / ops),
      opsPerSec: Math.round(ops / seconds),
    }),
  )
  for (const e of engines.values()) e.close()
  rmSync(dir, { recursive: true, force: true })
}

await main()
