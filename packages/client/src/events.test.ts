import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { afterEach, describe, expect, it } from 'vitest'
import { utf8 } from '@kvorum/core'
import { type MemoryCluster, memoryCluster } from '../../../test/support/memory-cluster.js'
import { CHANNELS } from '@kvorum/client'
import { detectorOf } from '@kvorum/client/testing'

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

async function eventually(check: () => boolean, ms = 2000): Promise<void> {
  for (const until = Date.now() + ms; Date.now() < until; ) {
    if (check()) return
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error(`condition not met within ${ms} ms`)
}

describe('the SDK tells the application what it does in the background', () => {
  it('a bug in read repair (a TypeError) reaches the background-error channel and the stats, not silence', async () => {
    cluster = await memoryCluster()
    const { kv, transport } = await cluster.client()
    const repairs = listen(CHANNELS.readRepair)
    const errors = listen(CHANNELS.backgroundError) as { client: unknown; task: string; error: unknown; expected: boolean }[]
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('k', 'v')
    // One replica holds a sibling the others lack, so a read repairs them; their repair
    // merges then get a malformed answer, as a buggy transport would give.
    await cluster.engines
      .get('n1')
      ?.mergePut('default', [{ key: utf8('k'), siblings: [{ dot: { actor: 'y', counter: 1 }, context: {}, timestamp: 2, value: utf8('only here') }] }])
    transport.intercept = async (_node, op, _opts, call) => {
      const out = await call()
      if (op === 'batch' && (out as { merges: unknown[] }).merges.length > 0) return { ...(out as object), merges: null }
      return out
    }
    await s.get('k', { r: 3 })
    await eventually(() => errors.length > 0)
    expect(errors[0]).toMatchObject({ client: kv, task: 'read-repair', expected: false })
    expect(errors[0]?.error).toBeInstanceOf(TypeError)
    expect(kv.stats().backgroundUnexpected).toBe(1)
    expect(repairs).toEqual([{ client: kv, store: 'default', nodes: expect.arrayContaining(['n2', 'n3']) }])
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
    expect(nodes).toContainEqual({ client: kv, node: 'n2', up: false, error: 'test: marked down' })
    for (let i = 0; i < 20; i++) await s.put(`key${i}`, 'v')
    expect(hints.length).toBeGreaterThan(0)
    expect(hints[0]).toMatchObject({ client: kv, store: 'default', target: 'n2' })
  })
})
