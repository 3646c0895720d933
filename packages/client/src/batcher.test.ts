import { describe, expect, it } from 'vitest'
import { type CoordinateItem, type HintItem, type StoreBatch, type StoreBatchResults, NodeUnavailableError, realTime, utf8 } from '@kvorum/core'
import { NodeBatcher } from './batcher.js'
import type { NodeClient } from './transport.js'

// The per-node batcher against a scripted node: what leaves in which request, and what fails how.

interface Sent {
  readonly kind: 'batch' | 'hints'
  readonly items: number
}

/** A node that answers every item ok after `delayMs`, noting each request. */
function fakeNode(delayMs = 1, answer?: (b: StoreBatch) => StoreBatchResults) {
  const sent: Sent[] = []
  const later = <T>(v: T) => new Promise<T>((r) => setTimeout(() => r(v), delayMs))
  const client = {
    batch: async (_o: unknown, _store: string, b: StoreBatch) => {
      sent.push({ kind: 'batch', items: b.keys.length + b.coordinates.length + b.merges.length })
      return later(
        answer
          ? answer(b)
          : {
              gets: b.keys.map(() => ({ ok: true as const, value: [] })),
              coordinates: b.coordinates.map(() => ({ ok: true as const, value: { siblings: [], dot: { actor: 'a', counter: 1 } } })),
              merges: b.merges.map(() => ({ ok: true as const, value: null })),
            },
      )
    },
    putHints: async (_o: unknown, _target: string, items: readonly HintItem[]) => {
      sent.push({ kind: 'hints', items: items.length })
      return later(items.map(() => ({ ok: true as const, value: null })))
    },
  } as unknown as NodeClient
  return { client, sent }
}

const noReport = { success: () => undefined, failure: () => undefined, batch: () => undefined }
const put = (key: string, bytes = 8): CoordinateItem => ({ key: utf8(key), value: new Uint8Array(bytes), context: {}, timestamp: 1 })
/** Deadlines are on the monotonic clock (realTime.monotonicMs). */
const soon = () => performance.now() + 5000

describe('NodeBatcher', () => {
  it('a steady stream of store operations does not starve another lane of the one request slot', async () => {
    const { client, sent } = fakeNode()
    const b = new NodeBatcher('n1', client, { maxInFlightPerNode: 1 }, realTime, noReport)
    let stop = false
    // Keep the store lane busy: a new read whenever one finishes.
    const reader = async () => {
      for (let i = 0; !stop && i < 200; i++) await b.get('kv', utf8(`k${i}`), soon(), 1)
    }
    const readers = [reader(), reader()]
    await new Promise((r) => setTimeout(r, 5))
    const queuedAt = sent.length
    const hint = b.hint('n2', { store: 'kv', key: utf8('h'), siblings: [] }, soon())
    await hint
    stop = true
    await Promise.all(readers)
    const at = sent.findIndex((s) => s.kind === 'hints')
    expect(at).toBeGreaterThanOrEqual(0)
    // Sent within a couple of requests of being queued, not after the reads ran out (counted from
    // when it was queued: how many batches left before that depends on the machine's speed).
    expect(at).toBeGreaterThanOrEqual(queuedAt)
    expect(sent.slice(queuedAt, at).filter((s) => s.kind === 'batch').length).toBeLessThan(3)
  })

  it('an operation whose deadline passes while it waits is refused as never sent', async () => {
    const { client, sent } = fakeNode(30)
    const b = new NodeBatcher('n1', client, { maxInFlightPerNode: 1 }, realTime, noReport)
    const first = b.coordinatePut('kv', put('a'), soon(), 1)
    await new Promise((r) => setImmediate(r))
    const late = b.coordinatePut('kv', put('b'), performance.now() + 5, 1).then(
      () => null,
      (e: unknown) => e,
    )
    await first
    const error = await late
    expect(error).toBeInstanceOf(NodeUnavailableError)
    expect((error as NodeUnavailableError).mayHaveApplied).toBe(false)
    expect(sent).toEqual([{ kind: 'batch', items: 1 }])
  })

  it('an item bigger than the byte budget leaves alone, never beside others', async () => {
    const { client, sent } = fakeNode()
    const b = new NodeBatcher('n1', client, { maxInFlightPerNode: 1, maxBatchBytes: 1024 }, realTime, noReport)
    await Promise.all([b.coordinatePut('kv', put('a', 4096), soon(), 1), b.coordinatePut('kv', put('b', 4096), soon(), 1), b.get('kv', utf8('c'), soon(), 1)])
    expect(sent.map((s) => s.items)).toEqual([1, 1, 1])
  })

  it('an answer with the wrong number of results fails every item as may-have-applied', async () => {
    const { client } = fakeNode(1, (batch) => ({
      gets: [],
      coordinates: batch.coordinates.slice(1).map(() => ({ ok: true as const, value: { siblings: [], dot: { actor: 'a', counter: 1 } } })),
      merges: [],
    }))
    const b = new NodeBatcher('n1', client, { maxInFlightPerNode: 1 }, realTime, noReport)
    const results = await Promise.allSettled([b.coordinatePut('kv', put('a'), soon(), 1), b.coordinatePut('kv', put('b'), soon(), 1)])
    for (const r of results) {
      expect(r.status).toBe('rejected')
      const e = (r as PromiseRejectedResult).reason as NodeUnavailableError
      expect(e).toBeInstanceOf(NodeUnavailableError)
      expect(e.mayHaveApplied).toBe(true)
      expect(e.message).toMatch(/answered 1 coordinate results for 2 items/)
    }
  })
})
