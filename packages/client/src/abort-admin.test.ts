import { afterEach, describe, expect, it } from 'vitest'
import { StorageEngine } from '@kvorum/storage'
import { connect } from './index.js'
import { type MemoryCluster, memoryCluster } from '../../../test/support/memory-cluster.js'

let cluster: MemoryCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

/** The highest cluster version any engine holds. */
async function heldVersion(c: MemoryCluster): Promise<number> {
  let max = 0
  for (const e of c.engines.values()) max = Math.max(max, (await e.getCluster())?.version ?? 0)
  return max
}

describe('signal on the client’s long-running calls', () => {
  it('repair rejects at once with KV_ABORTED and starts no further partition', async () => {
    cluster = await memoryCluster({ partitions: 64 })
    const { kv, transport } = await cluster.client()
    transport.intercept = async (_n, _o, _r, call) => {
      await new Promise((r) => setTimeout(r, 20))
      return call()
    }
    const controller = new AbortController()
    let done = 0
    const pass = kv.repair({
      concurrency: 1,
      signal: controller.signal,
      onProgress: (p) => {
        done = p.partitionsDone
        if (done === 2) controller.abort(new Error('operator pressed ctrl-c'))
      },
    })
    await expect(pass).rejects.toMatchObject({ code: 'KV_ABORTED', message: expect.stringContaining('ctrl-c') })
    await new Promise((r) => setTimeout(r, 600))
    // The partition under way when the signal came may finish; none after it starts.
    expect(done).toBeLessThanOrEqual(3)
  })

  it('rebalance stops between steps, installs nothing more, and resumes when run again', async () => {
    cluster = await memoryCluster({ partitions: 64 })
    const c = cluster
    const { kv } = await c.client({ timeoutMs: 300 })
    c.engines.set('n4', new StorageEngine({ path: ':memory:', nodeId: 'n4' }))
    const plan = kv.planChange({ add: [{ id: 'n4', url: 'mem://n4' }] })
    const controller = new AbortController()
    const fast = { drainMs: 350, cleanupGraceMs: 30, barrierTimeoutMs: 5000 }
    const run = kv.rebalance(plan, {
      ...fast,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.stage === 'write-both' && p.phase === 'drain') controller.abort()
      },
    })
    await expect(run).rejects.toMatchObject({ code: 'KV_ABORTED' })
    const atAbort = await heldVersion(c)
    await new Promise((r) => setTimeout(r, 500))
    expect(await heldVersion(c)).toBe(atAbort)
    const final = await kv.rebalance(undefined, fast)
    expect(final.move).toBeUndefined()
    expect(final.nodes.map((n) => n.id)).toEqual(['n1', 'n2', 'n3', 'n4'])
  })

  it('clusterVersions rejects at once when aborted', async () => {
    cluster = await memoryCluster()
    const { kv, transport } = await cluster.client()
    transport.intercept = async (_n, _o, _r, call) => {
      await new Promise((r) => setTimeout(r, 300))
      return call()
    }
    const started = Date.now()
    await expect(kv.clusterVersions({ signal: AbortSignal.timeout(30) })).rejects.toMatchObject({ code: 'KV_ABORTED' })
    expect(Date.now() - started).toBeLessThan(250)
  })
})

describe('signal on connect', () => {
  it('an aborted connect rejects at once with KV_ABORTED; one aborted before it starts asks no seed', async () => {
    cluster = await memoryCluster()
    const { kv: probe, transport } = await cluster.client()
    await probe.close()
    const seeds = [...cluster.nodes]
    const calls: string[] = []
    transport.intercept = async (node, op, _opts, call) => {
      calls.push(`${node} ${op}`)
      await new Promise((r) => setTimeout(r, 300))
      return call()
    }
    await expect(connect({ seeds, transport, signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'KV_ABORTED' })
    expect(calls).toEqual([])
    const started = Date.now()
    await expect(connect({ seeds, transport, signal: AbortSignal.timeout(30) })).rejects.toMatchObject({ code: 'KV_ABORTED' })
    expect(Date.now() - started).toBeLessThan(250)
  })
})
