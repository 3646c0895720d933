import { afterEach, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { type ClusterDef, initialAssignment, storeDef, utf8 } from '@kvorum/core'
import { StorageEngine } from '@kvorum/storage'
import { createApp } from './app.js'

const logger = pino({ level: 'silent' })
const CLUSTER: ClusterDef = {
  version: 1,
  partitions: 8,
  nodes: [{ id: 'n1', url: 'http://127.0.0.1:7001' }],
  assignment: initialAssignment([{ id: 'n1', url: 'http://127.0.0.1:7001' }], 8),
  stores: [storeDef({ name: 'kv', n: 1, r: 1, w: 1 })],
}

describe('GET /v1/check', () => {
  const engines: StorageEngine[] = []
  afterEach(() => {
    for (const e of engines.splice(0)) e.close()
  })
  const app = async (token?: string) => {
    const engine = new StorageEngine({ path: ':memory:', nodeId: 'n1' })
    engines.push(engine)
    await engine.putCluster(CLUSTER)
    await engine.batch('kv', { keys: [], merges: [], coordinates: [{ key: utf8('a'), value: utf8('1'), context: {}, timestamp: 1 }] })
    return createApp({ engine, logger, ...(token ? { token } : {}) })
  }

  it('answers the check as JSON: the page check run, rows checked, none damaged', async () => {
    const res = await (await app()).request('/v1/check')
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ node: 'n1', pages: { kind: 'quick_check', problems: [] }, rowsChecked: 1, corruptTotal: 0 })
    const full = await (await app()).request('/v1/check?full=1')
    expect(await full.json()).toMatchObject({ pages: { kind: 'integrity_check', problems: [] } })
  })

  it('refuses a bad full flag with KV_INVALID_INPUT, and a missing token with KV_UNAUTHORIZED', async () => {
    const bad = await (await app()).request('/v1/check?full=yes')
    expect(bad.status).toBe(400)
    expect(await bad.json()).toMatchObject({ code: 'KV_INVALID_INPUT', message: 'full must be 1, true, 0 or false, got "yes"' })
    const guarded = await (await app('secret')).request('/v1/check')
    expect(guarded.status).toBe(401)
    expect(await guarded.json()).toMatchObject({ code: 'KV_UNAUTHORIZED' })
  })
})
