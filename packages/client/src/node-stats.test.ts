import { afterEach, describe, expect, it } from 'vitest'
import { type MemoryCluster, memoryCluster } from '../../../test/support/memory-cluster.js'
import { LATENCY_WINDOW_MS, LATENCY_WINDOW_SAMPLES } from '@kvorum/client'
import { LatencyWindow } from './latency-window.js'

let cluster: MemoryCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

describe('kv.stats().nodes: per-node latency and queue depth', () => {
  it('shows a slow node slow: its p50 and p99 come from its own requests', async () => {
    cluster = await memoryCluster()
    const { kv, transport } = await cluster.client()
    transport.intercept = async (node, _op, _opts, call) => {
      if (node === 'n2') await new Promise((r) => setTimeout(r, 40))
      return call()
    }
    const s = kv.store<string>('default', { codec: 'utf8' })
    for (let i = 0; i < 10; i++) await s.put(`k${i}`, 'v', { w: 3 })
    const { nodes } = kv.stats()
    expect(Object.keys(nodes).sort()).toEqual(['n1', 'n2', 'n3'])
    expect(nodes.n2).toMatchObject({ url: 'mem://n2', up: true, queued: 0, inFlight: 0 })
    expect(nodes.n2?.latencySamples).toBeGreaterThanOrEqual(10)
    expect(nodes.n2?.latencyMsP50).toBeGreaterThanOrEqual(35)
    expect(nodes.n2?.latencyMsP99).toBeGreaterThanOrEqual(nodes.n2?.latencyMsP50 as number)
    expect(nodes.n1?.latencyMsP50).toBeLessThan(35)
  })

  it('shows operations queued behind a request in flight, and none once it is answered', async () => {
    cluster = await memoryCluster()
    const { kv, transport } = await cluster.client({ batch: { maxInFlightPerNode: 1 } })
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('k', 'v')
    let release = () => {}
    const held = new Promise<void>((r) => (release = r))
    transport.intercept = async (node, _op, _opts, call) => {
      if (node === 'n1') await held
      return call()
    }
    // The first read goes out alone and hangs; the next ones wait behind it for the one slot.
    const first = s.get('k', { r: 3 })
    await new Promise((r) => setTimeout(r, 20))
    const more = Array.from({ length: 5 }, () => s.get('k', { r: 3 }))
    await new Promise((r) => setTimeout(r, 20))
    const busy = kv.stats().nodes.n1
    expect(busy).toMatchObject({ inFlight: 1, queued: 5 })
    release()
    await Promise.all([first, ...more])
    expect(kv.stats().nodes.n1).toMatchObject({ inFlight: 0, queued: 0 })
  })
})

describe('the latency window', () => {
  it('keeps at most its capacity of samples, the most recent ones', () => {
    const w = new LatencyWindow()
    for (let i = 0; i < 3 * LATENCY_WINDOW_SAMPLES; i++) w.record(i < 2 * LATENCY_WINDOW_SAMPLES ? 1000 : 5, 0)
    // The 2048 slow samples were all overwritten by the 1024 fast ones.
    expect(w.summary(0)).toEqual({ p50Ms: 5, p99Ms: 5, samples: LATENCY_WINDOW_SAMPLES })
  })

  it('forgets samples older than the window', () => {
    const w = new LatencyWindow()
    for (let i = 0; i < 100; i++) w.record(500, 0)
    for (let i = 0; i < 10; i++) w.record(i + 1, LATENCY_WINDOW_MS)
    expect(w.summary(LATENCY_WINDOW_MS + 1)).toEqual({ p50Ms: 5, p99Ms: 10, samples: 10 })
    expect(new LatencyWindow().summary(0)).toEqual({ p50Ms: 0, p99Ms: 0, samples: 0 })
  })
})
