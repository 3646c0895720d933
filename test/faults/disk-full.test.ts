import { afterEach, describe, expect, it } from 'vitest'
import { type ProcessCluster, startCluster } from '../support/process-cluster.js'
import { replicaSets } from '../support/replicas.js'

/**
 * A real node process whose database quota (`--max-db-mib 1`) fills while
 * the cluster takes writes: the SDK treats its KV_DISK_FULL like a failed
 * replica, so every write still meets w=2 on the others (hints kept for
 * it), and the full node keeps serving reads and takes writes again once
 * deletes make room, without a restart.
 */

let cluster: ProcessCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

/** A value of 32 KiB, so 1 MiB holds a few dozen. */
const big = (i: number) => `value-${i}-`.padEnd(32 * 1024, '.')

async function metric(c: ProcessCluster, id: string, name: string): Promise<number> {
  const url = c.def.nodes.find((n) => n.id === id)?.url
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${c.token}` } })
  const line = (await res.text()).split('\n').find((l) => l.startsWith(`${name} `))
  return Number(line?.split(' ')[1] ?? Number.NaN)
}

describe('a node whose disk fills, in a cluster of real processes', () => {
  it('refuses writes with KV_DISK_FULL while the cluster stays writable, serves reads, and takes writes again once space returns', async () => {
    cluster = await startCluster({ args: { n1: ['--max-db-mib', '1'] } })
    const c = cluster
    const kv = await c.connect({ timeoutMs: 5000 })
    const s = kv.store<string>('default', { codec: 'utf8' })
    const keys = Array.from({ length: 60 }, (_, i) => `k${i}`)
    // 60 x 32 KiB is about twice n1's quota: every put still meets w=2 on n2 and n3.
    for (const [i, key] of keys.entries()) await s.put(key, big(i))
    expect(await metric(c, 'n1', 'kvorum_node_disk_full')).toBe(1)
    expect(await metric(c, 'n1', 'kvorum_node_disk_full_refusals_total')).toBeGreaterThan(0)
    expect(c.nodes.get('n1')?.proc?.output()).toMatch(/out of disk space: refusing writes with KV_DISK_FULL, still serving reads/)

    // n1 holds the first keys and not the last; every key reads back whole.
    const first = await replicaSets([['n1', c.replica('n1')]], 'default', 'k0')
    expect(first.get('n1')?.length).toBe(1)
    const last = await replicaSets([['n1', c.replica('n1')]], 'default', 'k59')
    expect(last.get('n1') ?? []).toEqual([])
    for (const [i, key] of keys.entries()) expect((await s.get(key)).values).toEqual([big(i)])
    // What n1 missed is hinted: parked on the coordinators (no node outside the preference list here).
    let hinted = 0
    for (const id of ['n2', 'n3']) hinted += (await c.replica(id).hintTargets({ timeoutMs: 2000 })).find((t) => t.target === 'n1')?.count ?? 0
    expect(hinted).toBeGreaterThan(0)

    // Deletes are taken on the full node and free its pages: it takes new writes, with no restart.
    for (const key of keys.slice(0, 20)) await s.delete(key)
    await s.put('after', 'room again')
    const after = await replicaSets([['n1', c.replica('n1')]], 'default', 'after')
    expect(after.get('n1')?.map((v) => v.value && Buffer.from(v.value).toString())).toEqual(['room again'])
    expect(await metric(c, 'n1', 'kvorum_node_disk_full')).toBe(0)
    expect(c.nodes.get('n1')?.proc?.output()).toMatch(/disk space is back: taking writes again/)
  }, 60_000)
})
