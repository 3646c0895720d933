import { afterEach, describe, expect, it } from 'vitest'
import { NodeUnavailableError, TimeoutError, fromUtf8, utf8 } from '@kvorum/core'
import { IndeterminateWriteError } from '@kvorum/client'
import type { MemoryTransport } from '@kvorum/client/testing'
import { type MemoryCluster, memoryCluster } from '../support/memory-cluster.js'
import { replicaSets } from '../support/replicas.js'

/**
 * Regression, found by the `pause` fault scenario: a put whose first primary
 * applied it but did not answer in time was coordinated again by the next
 * primary, so one write was stored twice under two dots. A delete that read
 * one copy covered only that one; when the slow primary came back, the other
 * copy returned: a deleted value reappeared.
 */
let mc: MemoryCluster | undefined
afterEach(async () => {
  await mc?.close()
  mc = undefined
})

/** `node` applies the requests that may carry coordinate-puts (store batches), then the answer is lost with `error`. */
function loseAnswers(transport: MemoryTransport, node: string, error: () => Error): void {
  transport.intercept = async (target, op, _opts, call) => {
    if (target !== node || op !== 'batch') return call()
    await call()
    throw error()
  }
}

/** Dots under which any replica stores `value` for `key`. */
async function copies(c: MemoryCluster, key: string, value: string): Promise<Set<string>> {
  const dots = new Set<string>()
  for (const set of (
    await replicaSets(
      c.nodes.map((n) => [n.id, c.replica(n.id)] as const),
      'default',
      key,
    )
  ).values()) {
    for (const v of set) if (v.value && fromUtf8(v.value) === value) dots.add(`${v.dot.actor}:${v.dot.counter}`)
  }
  return dots
}

describe('regression: a put retried on another primary after the first may have applied it stored it twice, and a deleted copy came back', () => {
  for (const [name, error] of [
    ['timed out', () => new TimeoutError('coordinate', 300)],
    ['lost the connection after sending', () => new NodeUnavailableError('n?', 'other side closed', { mayHaveApplied: true })],
  ] as const) {
    it(`a primary that ${name} is the only one to coordinate: the put is indeterminate and the value has one dot`, async () => {
      mc = await memoryCluster()
      const { kv, transport } = await mc.client()
      const first = kv.ring.primaries(kv.ring.partitionOf(utf8('k')), 3)[0] as string
      loseAnswers(transport, first, error)
      const s = kv.store<string>('default', { codec: 'utf8' })
      await expect(s.put('k', 'v')).rejects.toBeInstanceOf(IndeterminateWriteError)
      expect((await copies(mc, 'k', 'v')).size).toBe(1)
    })
  }

  it('a value read and deleted while its slow primary was away stays deleted when it returns', async () => {
    mc = await memoryCluster()
    const { kv, transport } = await mc.client()
    const first = kv.ring.primaries(kv.ring.partitionOf(utf8('k')), 3)[0] as string
    loseAnswers(transport, first, () => new TimeoutError('coordinate', 300))
    const s = kv.store<string>('default', { codec: 'utf8' })
    const put = await s.put('k', 'v').then(
      () => 'ok',
      (e: unknown) => e,
    )
    // The slow primary drops out (as a paused node would); the others see what they hold.
    transport.setReachable(first, false)
    const read = await s.get('k')
    await s.delete('k', { context: read.context })
    transport.setReachable(first, true)
    transport.intercept = (_n, _o, _r, call) => call()
    await kv.repair()
    const final = await s.get('k', { r: 3 })
    // Before the fix the put was acknowledged through the second primary, the delete saw that
    // copy, and the first primary's copy came back here.
    if (read.values.includes('v')) expect(final.values).not.toContain('v')
    expect(put).toBeInstanceOf(IndeterminateWriteError)
  })

  it('a primary that refused the connection is skipped: the next one coordinates and the put succeeds', async () => {
    mc = await memoryCluster()
    const { kv, transport } = await mc.client()
    const first = kv.ring.primaries(kv.ring.partitionOf(utf8('k')), 3)[0] as string
    transport.setReachable(first, false)
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('k', 'v')
    expect((await copies(mc, 'k', 'v')).size).toBe(1)
    expect((await s.get('k')).values).toEqual(['v'])
  })
})
