import { HASH_BYTES, type NodeHealth, decodeSetResults, encodeKeys, encodeSet, keyHash, partitionOfHash, toHex } from '@kvorum/core'
import type { Client } from './http.js'
import { BINARY, CLUSTER_VERSION, PARTITIONS, type Target, auth } from './target.js'

/** What the checks compare between batches: each store's Merkle roots and the sets of its seeded keys. */
export interface Snapshot {
  readonly roots: ReadonlyMap<string, Uint8Array>
  /** Store name to the hex of each seeded key's encoded sibling set. */
  readonly seeded: ReadonlyMap<string, readonly string[]>
}

async function ok(what: string, res: Promise<{ status: number; body: Buffer }>): Promise<Buffer> {
  const { status, body } = await res
  if (status !== 200) throw new Error(`${what} answered ${status}: ${body.toString().slice(0, 200)}`)
  return body
}

/** /health must answer (with the installed cluster version) after every batch. */
export async function checkHealth(client: Client): Promise<void> {
  const body = await ok('/health', client.send({ method: 'GET', path: '/health', headers: {} }))
  const health = JSON.parse(body.toString()) as NodeHealth
  if (health.clusterVersion !== CLUSTER_VERSION) throw new Error(`/health reports cluster version ${health.clusterVersion}, not ${CLUSTER_VERSION}`)
}

export async function snapshot(client: Client, target: Target): Promise<Snapshot> {
  const roots = new Map<string, Uint8Array>()
  const seeded = new Map<string, string[]>()
  for (const store of target.stores) {
    roots.set(store.name, await ok('merkle roots', client.send({ method: 'GET', path: `/v1/stores/${store.name}/merkle`, headers: auth })))
    const body = await ok(
      'get of seeded keys',
      client.send({ method: 'POST', path: `/v1/stores/${store.name}/get`, headers: BINARY, body: encodeKeys(target.seededKeys) }),
    )
    seeded.set(
      store.name,
      decodeSetResults(body).map((r) => (r.ok ? toHex(encodeSet(r.value)) : `error ${r.error.code}`)),
    )
  }
  return { roots, seeded }
}

function partitionOf(key: Uint8Array): number {
  return partitionOfHash(keyHash(key), PARTITIONS)
}

/**
 * Differences between two snapshots that no accepted request explains: a
 * partition's root that moved although no accepted write touched the
 * partition, or a seeded key's set that changed although no accepted write
 * named the key. `written` maps store names to the keys accepted writes named.
 */
export function unexplained(before: Snapshot, after: Snapshot, written: ReadonlyMap<string, readonly Uint8Array[]>, target: Target): string[] {
  const problems: string[] = []
  for (const store of target.stores) {
    const keys = written.get(store.name) ?? []
    const parts = new Set(keys.map(partitionOf))
    const names = new Set(keys.map(toHex))
    const a = before.roots.get(store.name) as Uint8Array
    const b = after.roots.get(store.name) as Uint8Array
    for (let p = 0; p < PARTITIONS; p++) {
      if (parts.has(p)) continue
      const off = p * HASH_BYTES
      if (toHex(a.subarray(off, off + HASH_BYTES)) !== toHex(b.subarray(off, off + HASH_BYTES)))
        problems.push(`store ${store.name}: Merkle root of partition ${p} changed, but no accepted request wrote to it`)
    }
    const setsA = before.seeded.get(store.name) as readonly string[]
    const setsB = after.seeded.get(store.name) as readonly string[]
    target.seededKeys.forEach((key, i) => {
      if (!names.has(toHex(key)) && setsA[i] !== setsB[i])
        problems.push(`store ${store.name}: seeded key ${Buffer.from(key).toString()} changed, but no accepted request wrote it`)
    })
  }
  return problems
}
