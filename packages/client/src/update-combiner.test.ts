import { afterEach, describe, expect, it } from 'vitest'
import type { StoreBatch } from '@kvorum/core'
import { type MemoryCluster, memoryCluster } from '../../../test/support/memory-cluster.js'

let cluster: MemoryCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

/** Count the writes to coordinate that reach the engines. */
function countCoordinates(c: MemoryCluster): { coordinates: number } {
  const seen = { coordinates: 0 }
  for (const engine of c.engines.values()) {
    const batch = engine.batch.bind(engine)
    engine.batch = (store: string, b: StoreBatch) => {
      seen.coordinates += b.coordinates.length
      return batch(store, b)
    }
  }
  return seen
}

const increment = (vs: number[]) => Math.max(0, ...vs) + 1

describe('concurrent updates of one key through one store handle', () => {
  it('all count: 100 concurrent increments of a plain number end at 100, without siblings, in far fewer writes', async () => {
    cluster = await memoryCluster()
    const seen = countCoordinates(cluster)
    const { kv } = await cluster.client()
    const store = kv.store<number>('default', { codec: 'json' })
    const answers = await Promise.all(Array.from({ length: 100 }, () => store.update('hot', increment)))
    // Each caller gets the value its own function made: 1..100, each once.
    expect(answers.map((a) => a.value).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1))
    const read = await store.get('hot')
    expect(read.values).toEqual([100])
    expect(read.siblings).toBe(1)
    // Alone, each update would read and write once: 100 writes, racing into siblings.
    expect(seen.coordinates).toBeLessThan(20)
  })

  it('a function that throws fails only its caller; the next builds on the value before it', async () => {
    cluster = await memoryCluster()
    const { kv } = await cluster.client()
    const store = kv.store<number>('default', { codec: 'json' })
    await store.put('k', 10)
    const results = await Promise.allSettled([
      store.update('k', (vs) => (vs[0] ?? 0) + 1),
      store.update('k', () => {
        throw new Error('not this one')
      }),
      store.update('k', (vs) => (vs[0] ?? 0) + 1),
    ])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect((results[1] as PromiseRejectedResult).reason.message).toBe('not this one')
    expect((await store.get('k')).values).toEqual([12])
  })

  it('an aborted caller gets KV_ABORTED and its function is not applied; the others go on', async () => {
    cluster = await memoryCluster()
    const { kv } = await cluster.client()
    const store = kv.store<number>('default', { codec: 'json' })
    const abort = new AbortController()
    let ranAborted = false
    const first = store.update('k', increment)
    const aborted = store.update(
      'k',
      (vs) => {
        ranAborted = true
        return increment(vs)
      },
      { signal: abort.signal },
    )
    const third = store.update('k', increment)
    abort.abort()
    await expect(aborted).rejects.toMatchObject({ code: 'KV_ABORTED' })
    await Promise.all([first, third])
    expect(ranAborted).toBe(false)
    expect((await store.get('k')).values).toEqual([2])
  })

  it('updates with quorum or timeout options run alone, as before', async () => {
    cluster = await memoryCluster()
    const seen = countCoordinates(cluster)
    const { kv } = await cluster.client()
    const store = kv.store<number>('default', { codec: 'json' })
    await Promise.all(Array.from({ length: 5 }, () => store.update('k', increment, { w: 3 })))
    expect(seen.coordinates).toBe(5)
  })
})
