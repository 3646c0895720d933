import { afterEach, describe, expect, it } from 'vitest'
import { realTime } from '@kvorum/core'
import { type MemoryCluster, memoryCluster } from '../../../test/support/memory-cluster.js'

let cluster: MemoryCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

/** Every node call takes this long: a read is one round (~1×), a put two (~2×). */
const CALL_MS = 150
const TIMEOUT_MS = 400

describe('timeoutMs is one deadline for the whole operation', () => {
  // Regression: the read inside update() and delete() and the write after it each got a
  // fresh timeoutMs, so an update could take about twice the deadline and still succeed.
  it.each(['update', 'delete'] as const)('%s fails with KV_TIMEOUT once the read and the write together pass timeoutMs', async (op) => {
    cluster = await memoryCluster()
    const { kv, transport } = await cluster.client({ timeoutMs: TIMEOUT_MS, requestTimeoutMs: 1000, readSpeculateMs: 10_000 })
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('k', 'v')
    transport.intercept = async (_node, _op, _opts, call) => {
      await new Promise((r) => setTimeout(r, CALL_MS))
      return call()
    }
    const started = Date.now()
    const run = op === 'update' ? s.update('k', () => 'w') : s.delete('k')
    await expect(run).rejects.toMatchObject({ code: 'KV_TIMEOUT' })
    // One deadline: the call ends near timeoutMs, not near twice it.
    // (Margin for a loaded machine's late timers; twice the deadline is what the bug took.)
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 2 * CALL_MS)
  })

  it('the timeout error reports the configured timeout', async () => {
    cluster = await memoryCluster()
    const { kv, transport } = await cluster.client({ timeoutMs: 100, requestTimeoutMs: 1000, readSpeculateMs: 10_000 })
    transport.intercept = async (_node, _op, _opts, call) => {
      await new Promise((r) => setTimeout(r, 300))
      return call()
    }
    await expect(kv.store('default').get('k')).rejects.toThrow(/within 100 ms/)
  })

  it.each(['put', 'delete', 'update', 'getMany'] as const)('%s: the timeout error reports the configured timeout', async (op) => {
    cluster = await memoryCluster()
    const { kv, transport } = await cluster.client({ timeoutMs: 100, requestTimeoutMs: 1000, readSpeculateMs: 10_000 })
    const s = kv.store('default', { codec: 'utf8' })
    transport.intercept = async (_node, _op, _opts, call) => {
      await new Promise((r) => setTimeout(r, 300))
      return call()
    }
    const runs = {
      put: () => s.put('k', 'v'),
      delete: () => s.delete('k'),
      update: () => s.update('k', () => 'v'),
      getMany: async () => {
        const got = (await s.getMany(['k'])).get('k')
        if (got?.ok) throw new Error('assertion failed: the read should time out')
        throw got?.error
      },
    }
    // Regression: the message once gave the time left when the error was made (a negative number).
    await expect(runs[op]()).rejects.toMatchObject({ code: 'KV_TIMEOUT', message: expect.stringMatching(/did not finish within 100 ms$/) })
  })

  // Regression: a write whose deadline passed before any primary took it reported
  // "needed 2 acks (no primary could coordinate the write) but 0 answered".
  it('a write that finds its deadline already passed (the read of an update used it up) fails with KV_TIMEOUT, storing nothing', async () => {
    cluster = await memoryCluster()
    let skewMs = 0
    // Deadlines run on the monotonic clock: moving it on is time passing (a wall-clock step would not be).
    const time = { ...realTime, monotonicMs: () => performance.now() + skewMs }
    const { kv } = await cluster.client({ timeoutMs: 500, time })
    const s = kv.store('default', { codec: 'utf8' })
    await s.put('k', 'before')
    const run = s.update('k', () => {
      // The clock moves past the deadline between the read and the write.
      skewMs += 10_000
      return 'after'
    })
    await expect(run).rejects.toMatchObject({ code: 'KV_TIMEOUT', message: expect.stringMatching(/nothing was stored.* within 500 ms$/) })
    skewMs = 0
    expect((await s.get('k', { r: 3 })).values).toEqual(['before'])
  })

  it('a read and a write that fit in the deadline together succeed', async () => {
    cluster = await memoryCluster()
    const { kv, transport } = await cluster.client({ timeoutMs: 3 * CALL_MS + 600, requestTimeoutMs: 1000, readSpeculateMs: 10_000 })
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('k', 'v')
    transport.intercept = async (_node, _op, _opts, call) => {
      await new Promise((r) => setTimeout(r, CALL_MS))
      return call()
    }
    await expect(s.update('k', () => 'w')).resolves.toMatchObject({ value: 'w' })
  })
})
