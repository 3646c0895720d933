import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { afterEach, describe, expect, it } from 'vitest'
import { utf8 } from '@kvorum/core'
import { type MemoryCluster, memoryCluster } from '../../../test/support/memory-cluster.js'
import { type BackgroundErrorEvent, CHANNELS, type ClientEventMap, type ClientEventName, type Kvorum } from '@kvorum/client'
import { type MemoryTransport, detectorOf } from '@kvorum/client/testing'

let cluster: MemoryCluster | undefined
const subscriptions: [string, (message: unknown) => void][] = []
afterEach(async () => {
  for (const [name, fn] of subscriptions.splice(0)) unsubscribe(name, fn)
  await cluster?.close()
  cluster = undefined
})

/** Collect what is published on a channel during the test. */
function listen(name: string): unknown[] {
  const seen: unknown[] = []
  const fn = (message: unknown) => seen.push(message)
  subscribe(name, fn)
  subscriptions.push([name, fn])
  return seen
}

/** Collect what `kv.on(event)` hands its listener. */
function collect<E extends ClientEventName>(kv: Kvorum, event: E): ClientEventMap[E][] {
  const seen: ClientEventMap[E][] = []
  kv.on(event, (e) => {
    seen.push(e)
  })
  return seen
}

async function eventually(check: () => boolean, ms = 2000): Promise<void> {
  for (const until = Date.now() + ms; Date.now() < until; ) {
    if (check()) return
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error(`condition not met within ${ms} ms`)
}

/** Make n1 hold a sibling of `k` the others lack, so a read of it with r=3 repairs them. */
async function divergeKey(c: MemoryCluster): Promise<void> {
  await c.engines
    .get('n1')
    ?.mergePut('default', [{ key: utf8('k'), siblings: [{ dot: { actor: 'y', counter: 1 }, context: {}, timestamp: 2, value: utf8('only here') }] }])
}

/** Answer every store batch carrying merges with a malformed result, as a buggy transport would. */
function breakMergeAnswers(transport: MemoryTransport): void {
  transport.intercept = async (_node, op, _opts, call) => {
    const out = await call()
    if (op === 'batch' && (out as { merges: unknown[] }).merges.length > 0) return { ...(out as object), merges: null }
    return out
  }
}

describe('the SDK tells the application what it does in the background', () => {
  it('a bug in read repair (a TypeError) reaches the background-error channel, kv.on and the stats, not silence', async () => {
    cluster = await memoryCluster()
    const { kv, transport } = await cluster.client()
    const repairs = listen(CHANNELS.readRepair)
    const errors = listen(CHANNELS.backgroundError) as { client: unknown; task: string; error: unknown; expected: boolean }[]
    const heard = collect(kv, 'backgroundError')
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('k', 'v')
    await divergeKey(cluster)
    breakMergeAnswers(transport)
    await s.get('k', { r: 3 })
    await eventually(() => errors.length > 0)
    expect(errors[0]).toMatchObject({ client: kv, task: 'read-repair', expected: false })
    expect(errors[0]?.error).toBeInstanceOf(TypeError)
    expect(heard[0]).toMatchObject({ task: 'read-repair', expected: false })
    expect(heard[0]?.error).toBe(errors[0]?.error)
    expect(kv.stats().backgroundUnexpected).toBe(1)
    expect(repairs).toEqual([{ client: kv, store: 'default', key: utf8('k'), nodes: expect.arrayContaining(['n2', 'n3']), siblings: 2 }])
  })

  it('puts, hints and node state are published with the client that did them', async () => {
    cluster = await memoryCluster({ nodes: 4 })
    const { kv, transport } = await cluster.client()
    const puts = listen(CHANNELS.put)
    const hints = listen(CHANNELS.hint)
    const nodes = listen(CHANNELS.node)
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('a', '1')
    expect(puts).toContainEqual({ client: kv, store: 'default', ok: true })
    transport.setReachable('n2', false)
    detectorOf(kv).failure('n2', 'test: marked down', true)
    expect(nodes).toContainEqual({ client: kv, node: 'n2', url: 'mem://n2', up: false, error: 'test: marked down' })
    for (let i = 0; i < 20; i++) await s.put(`key${i}`, 'v')
    expect(hints.length).toBeGreaterThan(0)
    expect(hints[0]).toMatchObject({ client: kv, store: 'default', target: 'n2', key: expect.any(Uint8Array) })
  })
})

describe('kv.on: the SDK as an event source', () => {
  it('nodeDown when requests to a node fail (with its URL and the error code), nodeUp when a probe reaches it again', async () => {
    cluster = await memoryCluster()
    const { kv, transport } = await cluster.client()
    const downs = collect(kv, 'nodeDown')
    const ups = collect(kv, 'nodeUp')
    const s = kv.store<string>('default', { codec: 'utf8' })
    transport.setReachable('n3', false)
    for (let i = 0; i < 10 && downs.length === 0; i++) await s.put(`k${i}`, 'v')
    expect(downs).toEqual([{ node: 'n3', url: 'mem://n3', error: expect.stringContaining('unreachable'), code: 'KV_NODE_UNAVAILABLE' }])
    expect(ups).toEqual([])
    transport.setReachable('n3', true)
    await eventually(() => ups.length > 0)
    expect(ups).toEqual([{ node: 'n3', url: 'mem://n3', downMs: expect.any(Number) }])
    expect(ups[0]?.downMs).toBeGreaterThan(0)
  })

  it('clusterChanged when the client switches to a newer definition', async () => {
    cluster = await memoryCluster()
    const { kv } = await cluster.client()
    const changes = collect(kv, 'clusterChanged')
    await cluster.install({ ...cluster.cluster, version: 2 })
    await kv.clusterVersions()
    expect(changes).toEqual([{ version: 2, previousVersion: 1, nodes: ['n1', 'n2', 'n3'] }])
  })

  it('readRepair with the store, the key, the replicas repaired and the merged set size', async () => {
    cluster = await memoryCluster()
    const { kv } = await cluster.client()
    const repairs = collect(kv, 'readRepair')
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('k', 'v')
    await divergeKey(cluster)
    await s.get('k', { r: 3 })
    expect(repairs).toHaveLength(1)
    expect(repairs[0]).toEqual({ store: 'default', key: utf8('k'), nodes: expect.arrayContaining(['n2', 'n3']), siblings: 2 })
  })

  it('hint when a write leaves one on a fallback for a replica it cannot reach', async () => {
    cluster = await memoryCluster({ nodes: 4 })
    const { kv, transport } = await cluster.client()
    const hints = collect(kv, 'hint')
    transport.setReachable('n2', false)
    detectorOf(kv).failure('n2', 'test: marked down', true)
    const s = kv.store<string>('default', { codec: 'utf8' })
    for (let i = 0; i < 20; i++) await s.put(`key${i}`, 'v')
    await eventually(() => hints.length > 0)
    expect(hints[0]).toEqual({ store: 'default', key: expect.any(Uint8Array), target: 'n2', holder: expect.stringMatching(/^n[134]$/) })
    expect(kv.stats().hintsWritten).toBe(hints.length)
  })

  it('a listener that throws does not break the SDK: the operation succeeds, the error is counted and told as a backgroundError', async () => {
    cluster = await memoryCluster()
    const { kv } = await cluster.client()
    const errors: BackgroundErrorEvent[] = []
    kv.on('backgroundError', (e) => {
      errors.push(e)
    })
    const bug = new Error('listener bug')
    kv.on('operation', () => {
      throw bug
    })
    const s = kv.store<string>('default', { codec: 'utf8' })
    await expect(s.put('k', 'v')).resolves.toBeDefined()
    expect((await s.get('k')).values).toEqual(['v'])
    expect(kv.stats().listenerErrors).toBe(2)
    expect(errors).toEqual([
      { task: 'listener:operation', error: bug, expected: false },
      { task: 'listener:operation', error: bug, expected: false },
    ])
  })

  it('off stops a listener; on and off refuse what is not an event', async () => {
    cluster = await memoryCluster()
    const { kv } = await cluster.client()
    const ops: string[] = []
    const listener = (e: { op: string }) => {
      ops.push(e.op)
    }
    kv.on('operation', listener)
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('k', 'v')
    kv.off('operation', listener)
    await s.get('k')
    expect(ops).toEqual(['put'])
    expect(() => kv.on('nodeGone' as 'nodeDown', () => {})).toThrow(/unknown event "nodeGone": one of nodeDown, nodeUp/)
  })
})
