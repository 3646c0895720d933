import { afterEach, describe, expect, it } from 'vitest'
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
