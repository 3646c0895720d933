import { afterEach, describe, expect, it } from 'vitest'
import { type MemoryCluster, memoryCluster } from '../../../test/support/memory-cluster.js'
import type { MemoryTransport } from './testing.js'

let cluster: MemoryCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

/** Every node call waits this long first. */
const SLOW_MS = 300

function slow(transport: MemoryTransport, ms = SLOW_MS): string[] {
  const calls: string[] = []
  transport.intercept = async (node, op, _opts, call) => {
    calls.push(`${node} ${op}`)
    await new Promise((r) => setTimeout(r, ms))
    return call()
  }
  return calls
}

async function setup() {
  cluster = await memoryCluster()
  const { kv, transport } = await cluster.client({ timeoutMs: 3000, requestTimeoutMs: 2000, readSpeculateMs: 10_000 })
  return { kv, transport, s: kv.store('default', { codec: 'utf8' }) }
}

/** How long `p` took to settle, and its error. */
async function timedFailure(p: Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const started = Date.now()
  const error = await p.then(
    () => null,
    (e: unknown) => e,
  )
  return { ms: Date.now() - started, error }
}

describe('signal', () => {
  it('an already aborted call rejects with KV_ABORTED, carrying the reason, and sends nothing', async () => {
    const { s, transport } = await setup()
    const calls = slow(transport, 0)
    const reason = new Error('the user left the page')
    const signal = AbortSignal.abort(reason)
    for (const run of [
      () => s.get('k', { signal }),
      () => s.put('k', 'v', { signal }),
      () => s.delete('k', { signal }),
      () => s.update('k', () => 'v', { signal }),
      () => s.getMany(['k'], { signal }),
      () => s.putMany([{ key: 'k', value: 'v' }], { signal }),
      () => s.deleteMany(['k'], { signal }),
    ]) {
      const err = await run().catch((e: unknown) => e)
      expect(err).toMatchObject({ code: 'KV_ABORTED', retryable: false, message: expect.stringContaining('the user left the page') })
      expect((err as Error).cause).toBe(reason)
    }
    expect(calls).toEqual([])
  })

  it.each(['get', 'put', 'delete', 'update', 'getMany', 'putMany', 'deleteMany'] as const)(
    '%s aborted while its replicas are slow rejects at once, not when they answer',
    async (op) => {
      const { s, transport } = await setup()
      await s.put('k', 'v')
      slow(transport)
      const controller = new AbortController()
      const signal = controller.signal
      const runs = {
        get: () => s.get('k', { signal }),
        put: () => s.put('k', 'w', { signal }),
        delete: () => s.delete('k', { signal }),
        update: () => s.update('k', () => 'w', { signal }),
        getMany: () => s.getMany(['k', 'j'], { signal }),
        putMany: () => s.putMany([{ key: 'k', value: 'w' }], { signal }),
        deleteMany: () => s.deleteMany(['k'], { signal }),
      }
      setTimeout(() => controller.abort(), 50)
      const { ms, error } = await timedFailure(runs[op]())
      expect(error).toMatchObject({ code: 'KV_ABORTED' })
      // The replicas answer after SLOW_MS; the abort came at 50 ms.
      expect(ms).toBeLessThan(SLOW_MS - 100)
    },
  )

  it('a put aborted after it was sent is not reported as acknowledged, though it may land (indeterminate, as a timeout)', async () => {
    const { s, transport } = await setup()
    slow(transport, 100)
    const controller = new AbortController()
    const put = s.put('k', 'landed', { signal: controller.signal })
    // The coordinate-put left at once; abort while the primary holds it.
    setTimeout(() => controller.abort(), 30)
    await expect(put).rejects.toMatchObject({ code: 'KV_ABORTED' })
    transport.intercept = (_n, _o, _r, call) => call()
    await new Promise((r) => setTimeout(r, 400))
    expect((await s.get('k', { r: 3 })).values).toEqual(['landed'])
  })

  it('a put aborted while it waited behind another request to its node is never sent', async () => {
    cluster = await memoryCluster()
    const { kv, transport } = await cluster.client({ timeoutMs: 3000, requestTimeoutMs: 2000, batch: { maxInFlightPerNode: 1 } })
    const s = kv.store('default', { codec: 'utf8' })
    slow(transport, 150)
    // The first put's batches occupy each node's one request slot; the second queues behind them.
    const first = s.put('a', 'first')
    await new Promise((r) => setImmediate(r))
    const controller = new AbortController()
    const second = s.put('b', 'never', { signal: controller.signal })
    controller.abort()
    await expect(second).rejects.toMatchObject({ code: 'KV_ABORTED' })
    await first
    transport.intercept = (_n, _o, _r, call) => call()
    await new Promise((r) => setTimeout(r, 300))
    expect((await s.get('b', { r: 3 })).found).toBe(false)
  })

  it('an update aborted during its read neither applies the function nor writes', async () => {
    const { s, transport } = await setup()
    await s.put('k', 'before')
    slow(transport, 100)
    const controller = new AbortController()
    let applied = 0
    const update = s.update(
      'k',
      () => {
        applied++
        return 'after'
      },
      { signal: controller.signal },
    )
    setTimeout(() => controller.abort(), 30)
    await expect(update).rejects.toMatchObject({ code: 'KV_ABORTED' })
    await new Promise((r) => setTimeout(r, 300))
    transport.intercept = (_n, _o, _r, call) => call()
    expect(applied).toBe(0)
    expect((await s.get('k', { r: 3 })).values).toEqual(['before'])
  })
})
