import { afterEach, describe, expect, it } from 'vitest'
import { type MemoryCluster, memoryCluster } from '../../../test/support/memory-cluster.js'

let cluster: MemoryCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

describe('a read that misses its quorum', () => {
  // Regression: the message said "needed 3 replicas but 1 answered" and named only the replicas that had failed.
  it('a read that cannot reach its quorum says how many of its replicas answered, and which did not', async () => {
    cluster = await memoryCluster()
    const { kv, transport } = await cluster.client({ readSpeculateMs: 10_000 })
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('k', 'v', { w: 3 })
    transport.setReachable('n2', false)
    transport.setReachable('n3', false)
    await expect(s.get('k')).rejects.toMatchObject({
      code: 'KV_QUORUM_NOT_MET',
      message: expect.stringMatching(
        /^get of "k" needed 2 replies but 1 of 3 replicas answered \(n[23]: KV_NODE_UNAVAILABLE .*; n[23]: KV_NODE_UNAVAILABLE .*\)$/,
      ),
    })
    transport.setReachable('n3', true)
    transport.intercept = async (node, _op, _opts, call) => {
      if (node === 'n3') await new Promise((r) => setTimeout(r, 300))
      return call()
    }
    const err = await s.get('k', { r: 3 }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'KV_QUORUM_NOT_MET', acknowledged: expect.any(Number), needed: 3 })
    expect((err as Error).message).toMatch(/^get of "k" needed 3 replies but [01] of 3 replicas answered \(n2: KV_NODE_UNAVAILABLE .*n3: no answer yet/)
  })
})
