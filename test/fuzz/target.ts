import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type ClusterDef, type CoordinateItem, type NodeHealth, type StoreDef, encodeHints, encodeStoreBatch, storeDef, utf8 } from '@kvorum/core'
import { type NodeProcess, startNode } from '../support/node-process.js'
import { Client, type WireRequest } from './http.js'
import type { Random } from '../support/random.js'

/** Token every fuzzed node requires. */
export const TOKEN = 'fuzz-token-0123'
/** Version of the installed cluster definition: above 1, so that older valid-looking definitions exist. */
export const CLUSTER_VERSION = 5
/** Partitions Q of the fuzzed cluster. */
export const PARTITIONS = 8
/** Seeded keys per store, checked after every batch. */
export const SEEDED_KEYS = 16

/** A running node with its cluster definition and seeded data. */
export interface Target {
  readonly proc: NodeProcess
  readonly def: ClusterDef
  readonly stores: readonly StoreDef[]
  /** The node's actor id: contexts that name it reach stored versions. */
  readonly incarnation: string
  readonly seededKeys: readonly Uint8Array[]
  /** Stop the process (by PID) and delete its data directory. */
  close(): Promise<void>
}

export const auth = { authorization: `Bearer ${TOKEN}` } as const
export const BINARY = { ...auth, 'content-type': 'application/octet-stream' } as const

/** The two stores: a small-valued siblings store and an lww store. */
export const STORES: readonly StoreDef[] = [
  storeDef({ name: 'kv', n: 1, r: 1, w: 1, pw: 1, maxValueBytes: 4096, maxSiblings: 100 }),
  storeDef({ name: 'lww', n: 1, r: 1, w: 1, pw: 1, conflict: 'lww', maxValueBytes: 16_384 }),
]

async function expectOk(client: Client, req: WireRequest): Promise<Buffer> {
  const res = await client.send(req)
  if (res.status !== 200) throw new Error(`setup ${req.method} ${req.path} answered ${res.status}: ${res.body.toString().slice(0, 300)}`)
  return res.body
}

/** Keys `seed-00`.. in both stores; some deleted, some with concurrent siblings; and a few hints. */
async function seed(client: Client, prng: Random, keys: readonly Uint8Array[]): Promise<void> {
  for (const store of ['kv', 'lww']) {
    const items: CoordinateItem[] = keys.map((key, i) => ({ key, value: prng.bytes(prng.range(1, 64)), context: {}, timestamp: 1_700_000_000_000 + i }))
    // A second write with an empty context makes siblings in `kv`; a null value leaves a tombstone.
    const again: CoordinateItem[] = keys.filter((_, i) => i % 4 === 1).map((key) => ({ key, value: prng.bytes(8), context: {}, timestamp: 1_700_000_000_500 }))
    const deletes: CoordinateItem[] = keys.filter((_, i) => i % 4 === 3).map((key) => ({ key, value: null, context: {}, timestamp: 1_700_000_001_000 }))
    for (const batch of [items, again, deletes]) {
      await expectOk(client, {
        method: 'POST',
        path: `/v1/stores/${store}/batch`,
        headers: BINARY,
        body: encodeStoreBatch({ keys: [], coordinates: batch, merges: [] }),
      })
    }
  }
  const hints = keys
    .slice(0, 4)
    .map((key, i) => ({ store: 'kv', key, siblings: [{ dot: { actor: 'seed-actor', counter: i + 1 }, context: {}, timestamp: 1, value: utf8('hint') }] }))
  await expectOk(client, { method: 'POST', path: '/v1/hints/n2', headers: BINARY, body: encodeHints(hints) })
}

/** Start a kvorum-node on 127.0.0.1 with a token, install a one-node cluster (n=1, Q=8) and seed it. */
export async function startTarget(prng: Random): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'kvorum-fuzz-'))
  let proc: NodeProcess
  try {
    proc = await startNode({ data: dir, id: 'n1', token: TOKEN })
  } catch (e) {
    rmSync(dir, { recursive: true, force: true })
    throw e
  }
  const client = new Client(proc.port, 2, 10_000)
  const close = async () => {
    client.close()
    await proc.stop().catch(() => undefined)
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    const def: ClusterDef = {
      version: CLUSTER_VERSION,
      partitions: PARTITIONS,
      nodes: [{ id: 'n1', url: proc.url }],
      assignment: Array.from({ length: PARTITIONS }, () => 'n1'),
      stores: STORES,
    }
    await expectOk(client, { method: 'PUT', path: '/v1/cluster', headers: { ...auth, 'content-type': 'application/json' }, body: utf8(JSON.stringify(def)) })
    const health = JSON.parse((await expectOk(client, { method: 'GET', path: '/health', headers: {} })).toString()) as NodeHealth
    const seededKeys = Array.from({ length: SEEDED_KEYS }, (_, i) => utf8(`seed-${String(i).padStart(2, '0')}`))
    await seed(client, prng, seededKeys)
    client.close()
    return { proc, def, stores: def.stores, incarnation: health.incarnation, seededKeys, close }
  } catch (e) {
    await close()
    throw e
  }
}
