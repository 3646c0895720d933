import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { type ClusterDef, type NodeDef, encodeKeys, initialAssignment, signCluster, storeDef, utf8 } from '@kvorum/core'
import { StorageEngine } from '@kvorum/storage'
import { createApp } from './app.js'
import { Credentials, type Secrets } from './credentials.js'

const logger = pino({ level: 'silent' })
const nodes: NodeDef[] = [{ id: 'n1', url: 'http://127.0.0.1:7001' }]
const cluster = (version: number): ClusterDef => ({
  version,
  partitions: 8,
  nodes,
  assignment: initialAssignment(nodes, 8),
  stores: [storeDef({ name: 'kv', n: 1, r: 1, w: 1 })],
})
const SECRETS: Secrets = { all: [], data: ['data-1'], admin: ['admin-1'], metrics: ['scrape-1'] }
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

const engines: StorageEngine[] = []
afterEach(() => {
  for (const e of engines.splice(0)) e.close()
})

function node(secrets = SECRETS) {
  const engine = new StorageEngine({ path: ':memory:', nodeId: 'n1' })
  engines.push(engine)
  const credentials = new Credentials(secrets)
  const app = createApp({ engine, logger, credentials })
  const putCluster = (def: unknown, token: string) =>
    app.request('/v1/cluster', { method: 'PUT', headers: { 'content-type': 'application/json', ...bearer(token) }, body: JSON.stringify(def) })
  const get = (token: string) =>
    app.request('/v1/stores/kv/get', {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', ...bearer(token) },
      body: encodeKeys([utf8('k')]) as Uint8Array<ArrayBuffer>,
    })
  const held = async () => ((await (await app.request('/v1/cluster', { headers: bearer('data-1') })).json()) as ClusterDef).version
  return { app, engine, credentials, putCluster, get, held }
}

async function expectCode(res: Response, status: number, code: string): Promise<void> {
  expect(res.status).toBe(status)
  expect(await res.json()).toMatchObject({ code })
}

describe('credentials with one job each', () => {
  it('data reads and writes data, admin writes the definition, metrics scrapes; each is refused elsewhere', async () => {
    const n = node()
    expect((await n.putCluster(cluster(1), 'admin-1')).status).toBe(200)
    expect((await n.get('data-1')).status).toBe(200)
    await expectCode(await n.get('admin-1'), 401, 'KV_UNAUTHORIZED')
    await expectCode(await n.get('scrape-1'), 401, 'KV_UNAUTHORIZED')
    expect((await n.app.request('/metrics', { headers: bearer('scrape-1') })).status).toBe(200)
    await expectCode(await n.app.request('/metrics', { headers: bearer('data-1') }), 401, 'KV_UNAUTHORIZED')
    await expectCode(await n.app.request('/metrics', { headers: bearer('admin-1') }), 401, 'KV_UNAUTHORIZED')
    await expectCode(await n.app.request('/v1/cluster', { headers: bearer('scrape-1') }), 401, 'KV_UNAUTHORIZED')
    expect((await n.app.request('/health')).status).toBe(200)
  })

  it('a data credential relays a definition the admin secret signed, and is refused an unsigned or a wrongly signed one (nothing changes)', async () => {
    const n = node()
    await expectCode(await n.putCluster(cluster(1), 'data-1'), 403, 'KV_UNSIGNED_DEFINITION')
    await expectCode(await n.putCluster(signCluster(cluster(1), 'not-the-admin-secret'), 'data-1'), 403, 'KV_UNSIGNED_DEFINITION')
    expect((await n.app.request('/v1/cluster', { headers: bearer('data-1') })).status).toBe(503)
    const signed = signCluster(cluster(1), 'admin-1')
    expect((await n.putCluster(signed, 'data-1')).status).toBe(200)
    // The node keeps the signature, so whoever reads the definition can relay it in turn.
    const read = (await (await n.app.request('/v1/cluster', { headers: bearer('data-1') })).json()) as ClusterDef
    expect(read.signature).toBe(signed.signature)
    // A signed definition edited afterwards (a compromised application raising the version, adding a node) is refused.
    const forged = { ...signed, version: 2, nodes: [...nodes, { id: 'evil', url: 'http://10.6.6.6:7070' }] }
    await expectCode(await n.putCluster(forged, 'data-1'), 403, 'KV_UNSIGNED_DEFINITION')
    expect(await n.held()).toBe(1)
    // The admin credential needs no signature.
    expect((await n.putCluster(cluster(2), 'admin-1')).status).toBe(200)
    expect(await n.held()).toBe(2)
  })

  it('the signature covers the definition, not how its JSON was spelled: keys in another order still verify', async () => {
    const n = node()
    const signed = signCluster(cluster(1), 'admin-1')
    const reordered = Object.fromEntries(Object.entries(signed).reverse())
    expect((await n.putCluster(reordered, 'data-1')).status).toBe(200)
  })

  it('the simple mode: one --token is every role, and signs too', async () => {
    const n = node({ all: ['one'], data: [], admin: [], metrics: [] })
    expect((await n.putCluster(cluster(1), 'one')).status).toBe(200)
    expect((await n.get('one')).status).toBe(200)
    expect((await n.app.request('/metrics', { headers: bearer('one') })).status).toBe(200)
    await expectCode(await n.get('two'), 401, 'KV_UNAUTHORIZED')
  })

  it('two secrets of a role are accepted at once; a replaced set takes effect on the next request', async () => {
    const n = node({ ...SECRETS, data: ['data-1', 'data-2'] })
    expect((await n.putCluster(cluster(1), 'admin-1')).status).toBe(200)
    expect((await n.get('data-1')).status).toBe(200)
    expect((await n.get('data-2')).status).toBe(200)
    n.credentials.replace({ ...SECRETS, data: ['data-2'] })
    await expectCode(await n.get('data-1'), 401, 'KV_UNAUTHORIZED')
    expect((await n.get('data-2')).status).toBe(200)
  })

  it('an admin secret in rotation verifies signatures made with either', async () => {
    const n = node({ ...SECRETS, admin: ['admin-1', 'admin-2'] })
    expect((await n.putCluster(signCluster(cluster(1), 'admin-2'), 'data-1')).status).toBe(200)
    expect((await n.putCluster(signCluster(cluster(2), 'admin-1'), 'data-1')).status).toBe(200)
  })
})
