import { afterEach, describe, expect, it } from 'vitest'
import { type Attributes, type Histogram, type Meter, type MetricOptions, createNoopMeter } from '@opentelemetry/api'
import { type MemoryCluster, memoryCluster } from '../../../test/support/memory-cluster.js'
import { DB_DURATION_BUCKETS, DB_SYSTEM_NAME, openTelemetryMetrics } from '@kvorum/client/opentelemetry'

/** One histogram the meter handed out, and every value recorded in it. */
interface Recorded {
  readonly name: string
  readonly options: MetricOptions | undefined
  readonly values: { value: number; attributes: Attributes }[]
}

/**
 * A Meter implementing the @opentelemetry/api interface that keeps what is
 * recorded in its histograms (its other instruments are the API's no-ops).
 * Not @opentelemetry/sdk-metrics: its Node 20 line needs an older API whose
 * ESM build vitest cannot load (see the deps commit).
 */
function recordingMeter(): { meter: Meter; histograms: Recorded[] } {
  const histograms: Recorded[] = []
  const meter: Meter = Object.assign(Object.create(createNoopMeter()) as Meter, {
    createHistogram(name: string, options?: MetricOptions): Histogram {
      const h: Recorded = { name, options, values: [] }
      histograms.push(h)
      return { record: (value: number, attributes: Attributes = {}) => h.values.push({ value, attributes }) }
    },
  })
  return { meter, histograms }
}

let cluster: MemoryCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

describe('OpenTelemetry: db.client.operation.duration from a Meter the application passes', () => {
  it('creates the histogram in seconds with the advised buckets', async () => {
    cluster = await memoryCluster()
    const { kv } = await cluster.client()
    const { meter, histograms } = recordingMeter()
    openTelemetryMetrics(kv, { meter })
    expect(histograms).toEqual([
      {
        name: 'db.client.operation.duration',
        options: { description: 'Duration of database client operations.', unit: 's', advice: { explicitBucketBoundaries: DB_DURATION_BUCKETS } },
        values: [],
      },
    ])
    expect(DB_DURATION_BUCKETS).toEqual([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10])
  })

  it('records each operation in seconds with the semantic-convention attributes, error.type on failure', async () => {
    cluster = await memoryCluster()
    const { kv, transport } = await cluster.client()
    const { meter, histograms } = recordingMeter()
    openTelemetryMetrics(kv, { meter })
    // Every request takes 20 ms, so an operation takes at least that: in seconds, 0.02 and up.
    transport.intercept = async (_node, _op, _opts, call) => {
      await new Promise((r) => setTimeout(r, 20))
      return call()
    }
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('a', '1')
    await s.get('a')
    for (const n of ['n1', 'n2', 'n3']) transport.setReachable(n, false)
    await expect(s.get('a')).rejects.toMatchObject({ code: 'KV_QUORUM_NOT_MET' })

    const values = histograms[0]?.values ?? []
    const base = { 'db.system.name': DB_SYSTEM_NAME, 'db.collection.name': 'default' }
    expect(values.map((v) => v.attributes)).toEqual([
      { ...base, 'db.operation.name': 'put' },
      { ...base, 'db.operation.name': 'get' },
      { ...base, 'db.operation.name': 'get', 'error.type': 'KV_QUORUM_NOT_MET' },
    ])
    for (const { value } of values.slice(0, 2)) {
      expect(value).toBeGreaterThanOrEqual(0.019)
      expect(value).toBeLessThan(1)
    }
    expect(DB_SYSTEM_NAME).toBe('kvorum')
  })

  it('an error that is not a KvorumError is typed by its class; remove() stops recording', async () => {
    cluster = await memoryCluster()
    const { kv } = await cluster.client()
    const { meter, histograms } = recordingMeter()
    const exported = openTelemetryMetrics(kv, { meter })
    const s = kv.store<string>('default', {
      codec: 'utf8',
      merge: () => {
        throw new RangeError('merge bug')
      },
    })
    // Two blind puts leave two siblings, so the get calls the merge function, which throws.
    await s.put('a', '1')
    await s.put('a', '2')
    await expect(s.get('a')).rejects.toThrow(RangeError)
    exported.remove()
    await s.put('b', '3')
    const values = histograms[0]?.values ?? []
    expect(values.map((v) => [v.attributes['db.operation.name'], v.attributes['error.type']])).toEqual([
      ['put', undefined],
      ['put', undefined],
      ['get', 'RangeError'],
    ])
  })
})
