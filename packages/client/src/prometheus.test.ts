import { afterEach, describe, expect, it } from 'vitest'
import { Registry } from 'prom-client'
import { utf8 } from '@kvorum/core'
import { type MemoryCluster, memoryCluster } from '../../../test/support/memory-cluster.js'
import { detectorOf } from '@kvorum/client/testing'
import { prometheusMetrics } from '@kvorum/client/prometheus'

let cluster: MemoryCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

/** The value of one sample line of a scrape, by its name and labels as printed. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  if (!line) throw new Error(`no sample ${series} in the scrape`)
  return Number(line.slice(series.length + 1))
}

describe('Prometheus: the SDK metrics on a prom-client registry', () => {
  it('a scrape shows each metric with its type: operations, duration in seconds, per-node gauges, hints, repairs, siblings', async () => {
    cluster = await memoryCluster({ nodes: 4 })
    const { kv, transport } = await cluster.client()
    const registry = new Registry()
    prometheusMetrics(kv, { registry })
    transport.intercept = async (_node, _op, _opts, call) => {
      await new Promise((r) => setTimeout(r, 15))
      return call()
    }
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('a', '1')
    await s.put('k', '2')
    await s.get('a')
    // A second sibling of k on one replica only: a read with r=3 repairs the others.
    await cluster.engines
      .get('n1')
      ?.mergePut('default', [{ key: utf8('k'), siblings: [{ dot: { actor: 'y', counter: 1 }, context: {}, timestamp: 2, value: utf8('x') }] }])
    await s.get('k', { r: 3 })
    // A node down: writes leave hints for it.
    transport.setReachable('n2', false)
    detectorOf(kv).failure('n2', 'test: marked down', true)
    for (let i = 0; i < 12; i++) await s.put(`h${i}`, 'v')
    // A merge function with a bug: its read fails with an error that is not a KvorumError.
    const broken = kv.store<string>('default', {
      codec: 'utf8',
      merge: () => {
        throw new RangeError('merge bug')
      },
    })
    await expect(broken.get('k')).rejects.toThrow(RangeError)

    const text = await registry.metrics()
    const types = Object.fromEntries([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]))
    expect(types).toMatchObject({
      kvorum_client_operations_total: 'counter',
      kvorum_client_operation_errors_total: 'counter',
      kvorum_client_operation_duration_seconds: 'histogram',
      kvorum_client_node_latency_seconds: 'gauge',
      kvorum_client_node_queue_depth: 'gauge',
      kvorum_client_node_up: 'gauge',
      kvorum_client_hints_written_total: 'counter',
      kvorum_client_read_repairs_total: 'counter',
      kvorum_client_siblings_seen_max: 'gauge',
      kvorum_client_background_failures_total: 'counter',
    })
    // Every counter is named *_total.
    for (const [name, type] of Object.entries(types)) if (type === 'counter') expect(name).toMatch(/_total$/)

    expect(sample(text, 'kvorum_client_operations_total{store="default",op="put",outcome="ok"}')).toBe(14)
    expect(sample(text, 'kvorum_client_operations_total{store="default",op="get",outcome="ok"}')).toBe(2)
    expect(sample(text, 'kvorum_client_operations_total{store="default",op="get",outcome="error"}')).toBe(1)
    expect(sample(text, 'kvorum_client_operation_errors_total{store="default",op="get",code="unexpected"}')).toBe(1)
    // Seconds, not ms: each put waited 15 ms per request, and took well under a second.
    const putCount = sample(text, 'kvorum_client_operation_duration_seconds_count{store="default",op="put",outcome="ok"}')
    const putSum = sample(text, 'kvorum_client_operation_duration_seconds_sum{store="default",op="put",outcome="ok"}')
    expect(putCount).toBe(14)
    expect(putSum / putCount).toBeGreaterThan(0.014)
    expect(putSum / putCount).toBeLessThan(1)
    expect(sample(text, 'kvorum_client_operation_duration_seconds_bucket{le="0.01",store="default",op="put",outcome="ok"}')).toBe(0)

    expect(sample(text, 'kvorum_client_node_latency_seconds{node="n1",quantile="0.5"}')).toBeGreaterThan(0.014)
    expect(sample(text, 'kvorum_client_node_queue_depth{node="n1",state="queued"}')).toBe(0)
    expect(sample(text, 'kvorum_client_node_queue_depth{node="n1",state="in_flight"}')).toBe(0)
    expect(sample(text, 'kvorum_client_node_up{node="n2"}')).toBe(0)
    expect(sample(text, 'kvorum_client_node_up{node="n1"}')).toBe(1)
    const stats = kv.stats()
    expect(sample(text, 'kvorum_client_read_repairs_total')).toBe(stats.readRepairs)
    expect(stats.readRepairs).toBeGreaterThanOrEqual(2)
    expect(sample(text, 'kvorum_client_hints_written_total')).toBe(stats.hintsWritten)
    expect(stats.hintsWritten).toBeGreaterThan(0)
    expect(sample(text, 'kvorum_client_siblings_seen_max')).toBe(2)

    // A second scrape counts nothing twice.
    const again = await registry.metrics()
    expect(sample(again, 'kvorum_client_read_repairs_total')).toBe(stats.readRepairs)
    expect(sample(again, 'kvorum_client_operations_total{store="default",op="put",outcome="ok"}')).toBe(14)
  })

  it('refuses a second export to the same registry and prefix with KV_INVALID_INPUT; remove() frees the names', async () => {
    cluster = await memoryCluster()
    const { kv } = await cluster.client()
    const registry = new Registry()
    const first = prometheusMetrics(kv, { registry })
    expect(() => prometheusMetrics(kv, { registry })).toThrow(expect.objectContaining({ code: 'KV_INVALID_INPUT' }))
    const other = prometheusMetrics(kv, { registry, prefix: 'other_' })
    expect(other.names).toContain('other_operations_total')
    first.remove()
    expect(registry.getSingleMetric('kvorum_client_operations_total')).toBeUndefined()
    expect(() => prometheusMetrics(kv, { registry })).not.toThrow()
    expect(() => prometheusMetrics(kv, { registry, prefix: 'bad prefix' })).toThrow(/prefix must be a Prometheus metric name prefix/)
  })
})
