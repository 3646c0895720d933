import { afterEach, describe, expect, it } from 'vitest'
import { type MemoryCluster, memoryCluster } from '../../../test/support/memory-cluster.js'
import { HttpTransport } from './index.js'

let cluster: MemoryCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

const CLOSED = { code: 'KV_CLOSED', retryable: false }

describe('after kv.close()', () => {
  it('every method of a store handle taken before refuses with KV_CLOSED, and no node is asked', async () => {
    cluster = await memoryCluster()
    const { kv, transport } = await cluster.client()
    const s = kv.store('default', { codec: 'utf8' })
    await s.put('k', 'v')
    await kv.close()
    const calls: string[] = []
    transport.intercept = (node, op, _opts, call) => {
      calls.push(`${node} ${op}`)
      return call()
    }
    await expect(s.get('k')).rejects.toMatchObject(CLOSED)
    await expect(s.put('k', 'w')).rejects.toMatchObject(CLOSED)
    await expect(s.delete('k')).rejects.toMatchObject(CLOSED)
    await expect(s.update('k', () => 'w')).rejects.toMatchObject(CLOSED)
    await expect(s.getMany(['k'])).rejects.toMatchObject(CLOSED)
    await expect(s.putMany([{ key: 'k', value: 'w' }])).rejects.toMatchObject(CLOSED)
    await expect(s.deleteMany(['k'])).rejects.toMatchObject(CLOSED)
    // Closed comes first: even a call that is also wrong says the client is closed.
    await expect(s.get('')).rejects.toMatchObject(CLOSED)
    expect(calls).toEqual([])
  })

  it('every client method that talks to nodes refuses too', async () => {
    cluster = await memoryCluster()
    const { kv, transport } = await cluster.client()
    await kv.close()
    const calls: string[] = []
    transport.intercept = (node, op, _opts, call) => {
      calls.push(`${node} ${op}`)
      return call()
    }
    expect(() => kv.store('default')).toThrow(expect.objectContaining(CLOSED))
    await expect(kv.repair()).rejects.toMatchObject(CLOSED)
    await expect(kv.clusterVersions()).rejects.toMatchObject(CLOSED)
    await expect(kv.rebalance()).rejects.toMatchObject(CLOSED)
    await expect(kv.abortRebalance()).rejects.toMatchObject(CLOSED)
    await expect(kv.createStore({ name: 'carts' })).rejects.toMatchObject(CLOSED)
    await expect(kv.alterStore('default', { r: 1 })).rejects.toMatchObject(CLOSED)
    expect(() => kv.startHandoff()).toThrow(expect.objectContaining(CLOSED))
    // Regression: repair and clusterVersions used to run, reopening what close() released.
    expect(calls).toEqual([])
  })

  it('a closed HTTP transport refuses requests instead of opening a new pool', async () => {
    const exchanges: string[] = []
    const transport = new HttpTransport({
      exchange: async (def, req) => {
        exchanges.push(`${def.id} ${req.path}`)
        return { status: 200, body: new Uint8Array() }
      },
    })
    await transport.close()
    await expect(transport.node({ id: 'n1', url: 'http://127.0.0.1:9' }).health({ timeoutMs: 100 })).rejects.toMatchObject(CLOSED)
    expect(exchanges).toEqual([])
    // The default exchange: after close, no undici pool is made (the port has nothing listening either way).
    const real = new HttpTransport()
    await real.close()
    await expect(real.node({ id: 'n1', url: 'http://127.0.0.1:9' }).health({ timeoutMs: 100 })).rejects.toMatchObject(CLOSED)
  })
})
