import { afterEach, describe, expect, it } from 'vitest'
import { utf8 } from '@kvorum/core'
import { type MemoryCluster, memoryCluster } from '../../../test/support/memory-cluster.js'
import { type ConnectOptions, MAX_CALL_ATTEMPTS, type RetryInfo } from './index.js'
import type { MemoryTransport } from './testing.js'

let cluster: MemoryCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

async function setup(options: Partial<ConnectOptions> = {}) {
  cluster = await memoryCluster()
  const { kv, transport } = await cluster.client({ timeoutMs: 1000, ...options })
  return { kv, transport, s: kv.store('default', { codec: 'utf8' }) }
}

function cutOff(transport: MemoryTransport, reachable: boolean): void {
  for (const n of ['n1', 'n2', 'n3']) transport.setReachable(n, reachable)
}

describe('errors carry retryable', () => {
  it('true for an unreachable quorum, false for invalid input', async () => {
    const { transport, s } = await setup()
    await expect(s.put('', 'v')).rejects.toMatchObject({ code: 'KV_INVALID_INPUT', retryable: false })
    cutOff(transport, false)
    await expect(s.get('k')).rejects.toMatchObject({ code: 'KV_QUORUM_NOT_MET', retryable: true })
  })
})

describe('the retry policy of connect', () => {
  it('by default there are no retries beyond the SDK’s own: the first failure is the answer', async () => {
    const { transport, s } = await setup()
    let calls = 0
    transport.intercept = async (_n, _o, _r, call) => {
      calls++
      return call()
    }
    cutOff(transport, false)
    await expect(s.get('k')).rejects.toMatchObject({ code: 'KV_QUORUM_NOT_MET' })
    // One attempt asks each of the 3 replicas at most once.
    expect(calls).toBeLessThanOrEqual(3)
  })

  it('runs the call again after the delay it returns, and is told the error, attempt, op, store and key', async () => {
    const infos: RetryInfo[] = []
    const { transport, s } = await setup({
      retry: (info) => {
        infos.push(info)
        return 40
      },
    })
    await s.put('k', 'v')
    cutOff(transport, false)
    setTimeout(() => cutOff(transport, true), 100)
    await expect(s.get('k')).resolves.toMatchObject({ values: ['v'] })
    expect(infos.length).toBeGreaterThanOrEqual(1)
    expect(infos.map((i) => i.attempt)).toEqual(infos.map((_, n) => n + 1))
    expect(infos[0]).toMatchObject({ op: 'get', store: 'default', key: 'k', error: { code: 'KV_QUORUM_NOT_MET', retryable: true } })
    expect(infos[0]?.remainingMs).toBeGreaterThan(0)
  })

  it('asks per key in a getMany, and the retried key succeeds with the others', async () => {
    const asked: unknown[] = []
    const { transport, s } = await setup({
      retry: ({ key }) => {
        asked.push(key)
        return 40
      },
    })
    await s.putMany([
      { key: 'a', value: 'A' },
      { key: 'b', value: 'B' },
    ])
    cutOff(transport, false)
    setTimeout(() => cutOff(transport, true), 60)
    const got = await s.getMany(['a', 'b'])
    expect([...got.values()].map((r) => r.ok && r.value.values[0])).toEqual(['A', 'B'])
    expect(new Set(asked)).toEqual(new Set(['a', 'b']))
  })

  it('is never asked about an error that is not retryable', async () => {
    let asked = 0
    const { kv } = await setup({
      retry: () => {
        asked++
        return 0
      },
    })
    await kv.store('default').put('k', new Uint8Array([0xff]))
    await expect(kv.store('default', { codec: 'utf8' }).get('k')).rejects.toMatchObject({ code: 'KV_DECODE_FAILED' })
    await expect(kv.store('default', { codec: 'utf8' }).put('k', 'x', { w: 9 })).rejects.toMatchObject({ code: 'KV_INVALID_INPUT' })
    expect(asked).toBe(0)
  })

  it('undefined gives up with the error at once', async () => {
    const attempts: number[] = []
    const { transport, s } = await setup({
      retry: ({ attempt }) => {
        attempts.push(attempt)
        return attempt < 2 ? 10 : undefined
      },
    })
    cutOff(transport, false)
    await expect(s.get('k')).rejects.toMatchObject({ code: 'KV_QUORUM_NOT_MET' })
    expect(attempts).toEqual([1, 2])
  })

  it('stays within the call’s one deadline: a delay past it gives up with the last error', async () => {
    const { transport, s } = await setup({ retry: () => 150 })
    cutOff(transport, false)
    const started = Date.now()
    await expect(s.get('k', { timeoutMs: 400 })).rejects.toMatchObject({ code: 'KV_QUORUM_NOT_MET' })
    // Attempts at about 0, 150 and 300 ms; the next would start past 400.
    expect(Date.now() - started).toBeLessThan(400 + 100)
  })

  it(`makes at most MAX_CALL_ATTEMPTS (${MAX_CALL_ATTEMPTS}) attempts, even when told to retry at once`, async () => {
    let asked = 0
    const { transport, s } = await setup({
      retry: () => {
        asked++
        return 0
      },
    })
    cutOff(transport, false)
    await expect(s.get('k', { timeoutMs: 5000 })).rejects.toMatchObject({ code: 'KV_QUORUM_NOT_MET' })
    expect(asked).toBe(MAX_CALL_ATTEMPTS - 1)
  })

  it('a wait between attempts ends at once when the signal aborts', async () => {
    const { transport, s } = await setup({ retry: () => 5000, timeoutMs: 10_000 })
    cutOff(transport, false)
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 50)
    const started = Date.now()
    await expect(s.get('k', { signal: controller.signal })).rejects.toMatchObject({ code: 'KV_ABORTED' })
    expect(Date.now() - started).toBeLessThan(1000)
  })

  it('a delay that is not a number of ms is a clear error', async () => {
    const { transport, s } = await setup({ retry: () => -1 })
    cutOff(transport, false)
    await expect(s.put(utf8('k'), 'v')).rejects.toMatchObject({
      code: 'KV_INVALID_INPUT',
      message: 'the retry policy must return a delay in ms (>= 0) or undefined, got -1',
    })
  })
})
