import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import {
  type ClusterDef,
  type CoordinateItem,
  type NodeDef,
  type SiblingSet,
  HASH_BYTES,
  Ring,
  Writer,
  decodeAckResults,
  decodeScanPage,
  decodeSetResults,
  decodeStoredHints,
  encodeAcks,
  encodeCoordinate,
  encodeHints,
  encodeKeySets,
  encodeKeys,
  encodeScanRequest,
  encodeSetResults,
  encodeStoreBatch,
  encodeTombstoneRequest,
  fromUtf8,
  decodeStoreBatchResults,
  initialAssignment,
  storeDef,
  toHex,
  utf8,
} from '@kvorum/core'
import { StorageEngine } from '@kvorum/storage'
import { createApp } from './app.js'

const Q = 8
const BIN = { 'content-type': 'application/octet-stream' }
const logger = pino({ level: 'silent' })
const nodes: NodeDef[] = ['n1', 'n2', 'n3'].map((id, i) => ({ id, url: `http://127.0.0.1:${7001 + i}` }))
/** n1 holds every partition of kv and small (n=3), but only its own third of `one` (n=1). */
const CLUSTER: ClusterDef = {
  version: 1,
  partitions: Q,
  nodes,
  assignment: initialAssignment(nodes, Q),
  stores: [
    storeDef({ name: 'kv', n: 3, r: 2, w: 2 }),
    storeDef({ name: 'small', n: 3, r: 2, w: 2, maxValueBytes: 16 }),
    storeDef({ name: 'one', n: 1, r: 1, w: 1 }),
    storeDef({ name: 'last', n: 3, r: 2, w: 2, conflict: 'lww' }),
  ],
}
const SEEDED = ['alpha', 'beta', 'gamma'].map(utf8)

function keyOwnedBy(owner: string, prefix: string): Uint8Array {
  const ring = new Ring(CLUSTER)
  for (let i = 0; i < 10_000; i++) {
    const key = utf8(`${prefix}${i}`)
    if (ring.primaries(ring.partitionOf(key), 1)[0] === owner) return key
  }
  throw new Error(`no key owned by ${owner}`)
}

const write = (key: Uint8Array | string, value: string | Uint8Array | null = 'v'): CoordinateItem => ({
  key: typeof key === 'string' ? utf8(key) : key,
  value: typeof value === 'string' ? utf8(value) : value,
  context: {},
  timestamp: 1000,
})
/** A store batch of writes to coordinate only. */
const coordinate = (items: CoordinateItem[]) => encodeStoreBatch({ keys: [], coordinates: items, merges: [] })
const coordinated = (bytes: Uint8Array) => decodeStoreBatchResults(bytes).coordinates
const post = (bytes: Uint8Array, headers: Record<string, string> = BIN): RequestInit => ({ method: 'POST', headers, body: bytes as Uint8Array<ArrayBuffer> })
const bytesOf = async (res: Response) => new Uint8Array(await res.arrayBuffer())

let engine: StorageEngine
let app: ReturnType<typeof createApp>

/** Every response, refused or not, must tell the cluster version the node holds. */
async function call(path: string, init?: RequestInit, target = app): Promise<Response> {
  const res = await target.request(path, init)
  expect(res.headers.get('x-kvorum-cluster-version')).toBe(String((await engine.getCluster())?.version ?? 0))
  return res
}

async function expectRefused(res: Response, status: number, code: string): Promise<void> {
  const text = await res.text()
  expect(res.status, text).toBe(status)
  expect(res.headers.get('content-type')).toMatch(/^application\/json/)
  const body = JSON.parse(text) as { code: string; message: string }
  expect(body).toEqual({ code, message: expect.any(String) })
  expect(body.message.length).toBeGreaterThan(0)
}

/** Everything a client could observe of the stored data. */
async function snapshot(): Promise<string> {
  const roots = await Promise.all(CLUSTER.stores.map(async (s) => toHex(await engine.merkleRoots(s.name))))
  const gets = await Promise.all(['kv', 'small'].map(async (s) => toHex(encodeSetResults(await engine.get(s, SEEDED)))))
  return JSON.stringify({ roots, gets, hints: await engine.hintTargets(), cluster: await engine.getCluster() })
}

/** Run `fn` and check the stored data did not move. */
async function unchanged(fn: () => Promise<void>): Promise<void> {
  const before = await snapshot()
  await fn()
  expect(await snapshot()).toBe(before)
}

beforeEach(async () => {
  engine = new StorageEngine({ path: ':memory:', nodeId: 'n1' })
  await engine.putCluster(CLUSTER)
  app = createApp({ engine, logger })
  await engine.batch('kv', { keys: [], coordinates: SEEDED.map((k) => write(k, `kv-${fromUtf8(k)}`)), merges: [] })
  await engine.batch('small', { keys: [], coordinates: SEEDED.map((k) => write(k, 'tiny')), merges: [] })
  await engine.putHints('n2', [{ store: 'kv', key: utf8('hinted'), siblings: [] }])
})
afterEach(() => engine.close())

describe('node app: the protocol over HTTP', () => {
  it('coordinates a write, reads it back, and serves merge, scan, merkle and hints', async () => {
    const res = await call('/v1/stores/kv/batch', post(coordinate([write('hello', 'world')])))
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/octet-stream')
    const [written] = coordinated(await bytesOf(res))
    expect(written?.ok && written.value.dot.actor).toBe(engine.incarnation)

    const got = decodeSetResults(await bytesOf(await call('/v1/stores/kv/get', post(encodeKeys([utf8('hello'), utf8('absent')])))))
    expect(got.map((r) => r.ok && r.value.map((v) => v.value && fromUtf8(v.value)))).toEqual([['world'], []])

    const set: SiblingSet = written?.ok ? written.value.siblings : []
    const merged = decodeAckResults(await bytesOf(await call('/v1/stores/kv/merge', post(encodeKeySets([{ key: utf8('copy'), siblings: set }])))))
    expect(merged).toEqual([{ ok: true, value: null }])

    const roots = await bytesOf(await call('/v1/stores/kv/merkle'))
    expect(toHex(roots)).toBe(toHex(await engine.merkleRoots('kv')))
    expect(await bytesOf(await call('/v1/stores/kv/merkle/0'))).toHaveLength(32 * HASH_BYTES)
    expect(await bytesOf(await call('/v1/stores/kv/merkle/0/31'))).toHaveLength(32 * HASH_BYTES)

    let scanned = 0
    for (let p = 0; p < Q; p++) {
      const page = decodeScanPage(await bytesOf(await call('/v1/stores/kv/scan', post(encodeScanRequest({ partition: p, limit: 100 })))))
      scanned += page.items.length
    }
    expect(scanned).toBe(SEEDED.length + 2)

    const hints = decodeStoredHints(await bytesOf(await call('/v1/hints/n2?limit=10')))
    expect(hints.map((h) => fromUtf8(h.key))).toEqual(['hinted'])
    expect(await (await call('/v1/hints')).json()).toEqual([{ target: 'n2', count: 1, oldestMs: expect.any(Number) }])
    const acked = await call('/v1/hints/n2/ack', post(encodeAcks(hints.map((h) => ({ id: h.id, seq: h.seq })))))
    expect(await acked.json()).toEqual({ deleted: 1 })
  })

  it('a store batch answers its reads, coordinate-puts and merges section by section, with the writes in one group commit', async () => {
    const [stored] = await engine.get('kv', [utf8('alpha')])
    const foreign = { dot: { actor: 'elsewhere', counter: 1 }, context: {}, timestamp: 1, value: utf8('copied') }
    const groups = engine.groupCommits
    const res = await call(
      '/v1/stores/kv/batch',
      post(
        encodeStoreBatch({
          keys: [utf8('alpha'), utf8('absent')],
          coordinates: [write('b1', 'one'), write('b2', 'two')],
          merges: [{ key: utf8('b3'), siblings: [foreign] }],
        }),
      ),
    )
    expect(res.status).toBe(200)
    const out = decodeStoreBatchResults(await bytesOf(res))
    expect(out.gets).toEqual([
      { ok: true, value: stored?.ok ? stored.value : null },
      { ok: true, value: [] },
    ])
    expect(out.coordinates.map((r) => r.ok && r.value.siblings.map((v) => v.value && fromUtf8(v.value)))).toEqual([['one'], ['two']])
    expect(out.merges).toEqual([{ ok: true, value: null }])
    expect(engine.groupCommits).toBe(groups + 1)
    const after = await engine.get('kv', ['b1', 'b2', 'b3'].map(utf8))
    expect(after.map((r) => r.ok && r.value.map((v) => v.value && fromUtf8(v.value)))).toEqual([['one'], ['two'], ['copied']])
  })

  it('an lww write that loses to a later timestamp still gets an answer the SDK can read', async () => {
    const newer = await call('/v1/stores/last/batch', post(coordinate([{ ...write('k', 'newer'), timestamp: 2000 }])))
    expect(newer.status).toBe(200)
    const res = await call('/v1/stores/last/batch', post(coordinate([{ ...write('k', 'older'), timestamp: 1000 }])))
    expect(res.status).toBe(200)
    const [older] = coordinated(await bytesOf(res))
    expect(older?.ok && older.value.siblings.map((v) => v.value && fromUtf8(v.value))).toEqual(['newer'])
  })

  it('/health answers without a cluster, and data routes say KV_NO_CLUSTER (503)', async () => {
    engine.close()
    engine = new StorageEngine({ path: ':memory:', nodeId: 'n1' })
    app = createApp({ engine, logger })
    const health = await call('/health')
    expect(await health.json()).toEqual({ status: 'ok', id: 'n1', incarnation: engine.incarnation, clusterVersion: 0, keys: 0, bytes: 0 })
    await expectRefused(await call('/v1/cluster'), 503, 'KV_NO_CLUSTER')
    await expectRefused(await call('/v1/stores/kv/batch', post(coordinate([write('k')]))), 503, 'KV_NO_CLUSTER')
  })

  // A route's answer carries its headers from the start (one plain object); refusals get them after the fact.
  it('every answer, served or refused, carries its content type, x-request-id and cluster version', async () => {
    const served = await call('/v1/stores/kv/batch', post(coordinate([write('h')]), { ...BIN, 'x-request-id': 'mine-1' }))
    expect(served.status).toBe(200)
    expect(served.headers.get('content-type')).toBe('application/octet-stream')
    expect(served.headers.get('x-request-id')).toBe('mine-1')
    expect(served.headers.get('x-kvorum-cluster-version')).toBe('1')
    const json = await call('/v1/cluster', { headers: { 'x-request-id': 'mine-2' } })
    expect(json.headers.get('content-type')).toBe('application/json')
    expect(json.headers.get('x-request-id')).toBe('mine-2')
    const refused = await call('/v1/stores/kv/get', post(new Uint8Array([0xff]), { ...BIN, 'x-request-id': 'mine-3' }))
    expect(refused.status).toBe(400)
    expect(refused.headers.get('x-request-id')).toBe('mine-3')
    expect(refused.headers.get('x-kvorum-cluster-version')).toBe('1')
  })

  it('/metrics is Prometheus text counting requests by route and status', async () => {
    await call('/v1/stores/kv/get', post(encodeKeys([utf8('alpha')])))
    await call('/v1/stores/kv/batch', post(coordinate([write('m')])))
    await call('/v1/stores/kv/get', post(new Uint8Array([0xff])))
    const res = await call('/metrics')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/)
    const text = await res.text()
    expect(text).toMatch(/^kvorum_node_requests_total\{route="\/v1\/stores\/:store\/get",status="200"\} 1$/m)
    expect(text).toMatch(/^kvorum_node_requests_total\{route="\/v1\/stores\/:store\/get",status="400"\} 1$/m)
    expect(text).toMatch(/^kvorum_node_coordinated_writes_total 7$/m)
    expect(Number(/^kvorum_node_cache_keys (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(0)
    expect(text).toMatch(/^kvorum_node_cache_bytes \d+$/m)
  })
})

describe('node app: bad input gets a 4xx {code, message} and changes nothing', () => {
  const valid = () => coordinate([write('fresh', 'value')])
  const frameRoutes: [string, Uint8Array][] = [
    ['/v1/stores/kv/merge', encodeKeySets([{ key: utf8('fresh'), siblings: [] }])],
    ['/v1/stores/kv/get', encodeKeys([utf8('alpha')])],
    [
      '/v1/stores/kv/batch',
      encodeStoreBatch({ keys: [utf8('alpha')], coordinates: [write('fresh', 'value')], merges: [{ key: utf8('fresh2'), siblings: [] }] }),
    ],
    ['/v1/stores/kv/scan', encodeScanRequest({ partition: 0, limit: 10 })],
    ['/v1/stores/kv/tombstones', encodeTombstoneRequest({ partition: 0, beforeMs: 1, limit: 10 })],
    ['/v1/stores/kv/reap', encodeKeySets([{ key: utf8('alpha'), siblings: [] }])],
    ['/v1/hints/n3', encodeHints([{ store: 'kv', key: utf8('fresh'), siblings: [] }])],
    ['/v1/hints/n2/ack', encodeAcks([{ id: 1, seq: 1 }])],
  ]

  it.each(frameRoutes)('%s: truncated, trailing, empty and garbage frames are KV_INVALID_INPUT', async (route, good) => {
    await unchanged(async () => {
      const bad = [
        good.subarray(0, good.length - 1),
        new Uint8Array([...good, 0]),
        new Uint8Array(0),
        new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        new Uint8Array([0x80, 0x40]),
      ]
      for (const frame of bad) await expectRefused(await call(route, post(frame)), 400, 'KV_INVALID_INPUT')
    })
  })

  it('keys must be 1..1024 bytes', async () => {
    await unchanged(async () => {
      for (const key of [new Uint8Array(0), new Uint8Array(1025).fill(97)]) {
        await expectRefused(await call('/v1/stores/kv/get', post(encodeKeys([key]))), 400, 'KV_INVALID_INPUT')
        await expectRefused(await call('/v1/stores/kv/batch', post(coordinate([write(key)]))), 400, 'KV_INVALID_INPUT')
        await expectRefused(await call('/v1/stores/kv/merge', post(encodeKeySets([{ key, siblings: [] }]))), 400, 'KV_INVALID_INPUT')
      }
    })
    const longest = new Uint8Array(1024).fill(97)
    expect((await call('/v1/stores/kv/batch', post(coordinate([write(longest)])))).status).toBe(200)
  })

  it('bad clocks: counter 0, actor outside [0-9a-z-], duplicate actor, dot twice in a set', async () => {
    const withContext = (context: Record<string, number>) => coordinate([{ ...write('fresh'), context }])
    // A batch with no reads, one write to coordinate whose context names `abc` twice, and no merges.
    const duplicateActor = new Writer()
      .uint(0)
      .uint(1)
      .bytes(utf8('fresh'))
      .uint(1000)
      .uint(2)
      .string('abc')
      .uint(1)
      .string('abc')
      .uint(2)
      .byte(1)
      .uint(0)
      .finish()
    const version = (actor: string, counter: number) => ({ dot: { actor, counter }, context: {}, timestamp: 1, value: utf8('x') })
    await unchanged(async () => {
      for (const frame of [withContext({ abc: 0 }), withContext({ 'Bad!': 1 }), withContext({ ['a'.repeat(65)]: 1 }), duplicateActor]) {
        await expectRefused(await call('/v1/stores/kv/batch', post(frame)), 400, 'KV_INVALID_INPUT')
      }
      for (const siblings of [[version('abc', 0)], [version('UPPER', 1)], [version('abc', 1), version('abc', 1)]]) {
        await expectRefused(await call('/v1/stores/kv/merge', post(encodeKeySets([{ key: utf8('fresh'), siblings }]))), 400, 'KV_INVALID_INPUT')
      }
    })
  })

  it('a body that is not application/octet-stream is 415', async () => {
    await unchanged(async () => {
      for (const headers of [{}, { 'content-type': 'text/plain' }, { 'content-type': 'application/json' }]) {
        await expectRefused(await call('/v1/stores/kv/batch', post(valid(), headers)), 415, 'KV_UNSUPPORTED_MEDIA_TYPE')
      }
    })
  })

  it('a body declared over the frame limit is 413 before it is read', async () => {
    await unchanged(async () => {
      const headers = { ...BIN, 'content-length': String(64 * 1024 * 1024 + 1) }
      await expectRefused(await call('/v1/stores/kv/batch', post(valid(), headers)), 413, 'KV_PAYLOAD_TOO_LARGE')
    })
  })

  it('an unknown store is 404 KV_UNKNOWN_STORE', async () => {
    await unchanged(async () => {
      await expectRefused(await call('/v1/stores/nope/batch', post(valid())), 404, 'KV_UNKNOWN_STORE')
      await expectRefused(await call('/v1/stores/nope/get', post(encodeKeys([utf8('alpha')]))), 404, 'KV_UNKNOWN_STORE')
      await expectRefused(await call('/v1/stores/nope/merkle'), 404, 'KV_UNKNOWN_STORE')
      await expectRefused(await call('/v1/hints/n2', post(encodeHints([{ store: 'nope', key: utf8('k'), siblings: [] }]))), 404, 'KV_UNKNOWN_STORE')
    })
  })

  it('a key of a partition this node does not hold is a per-item KV_STALE_METADATA; the rest of the batch applies', async () => {
    const mine = keyOwnedBy('n1', 'mine')
    const theirs = keyOwnedBy('n2', 'theirs')
    const res = await call('/v1/stores/one/batch', post(coordinate([write(mine), write(theirs)])))
    expect(res.status).toBe(200)
    const [first, second] = coordinated(await bytesOf(res))
    expect(first?.ok).toBe(true)
    expect(second).toEqual({ ok: false, error: { code: 'KV_STALE_METADATA', message: expect.stringContaining('partition'), clusterVersion: 1 } })
    const got = decodeSetResults(await bytesOf(await call('/v1/stores/one/get', post(encodeKeys([mine, theirs])))))
    expect(got[0]?.ok && got[0].value).toHaveLength(1)
    expect(got[1]?.ok).toBe(false)
    const part = new Ring(CLUSTER).partitionOf(theirs)
    expect(toHex((await engine.merkleRoots('one')).subarray(part * HASH_BYTES, (part + 1) * HASH_BYTES))).toBe('0'.repeat(16))
  })

  it('merkle routes refuse a bad partition or branch number', async () => {
    await unchanged(async () => {
      for (const path of ['/merkle/8', '/merkle/abc', '/merkle/-1', '/merkle/1.5', '/merkle/1234567890', '/merkle/0/32', '/merkle/0/x', '/merkle/8/0']) {
        await expectRefused(await call(`/v1/stores/kv${path}`), 400, 'KV_INVALID_INPUT')
      }
      await expectRefused(await call('/v1/hints/n2?limit=0'), 400, 'KV_INVALID_INPUT')
      await expectRefused(await call('/v1/hints/n2?after=x'), 400, 'KV_INVALID_INPUT')
    })
  })

  it('a scan request with a bad partition or limit is refused', async () => {
    await unchanged(async () => {
      await expectRefused(await call('/v1/stores/kv/scan', post(encodeScanRequest({ partition: Q, limit: 10 }))), 400, 'KV_INVALID_INPUT')
      await expectRefused(await call('/v1/stores/kv/scan', post(encodeScanRequest({ partition: 0, limit: 0 }))), 400, 'KV_INVALID_INPUT')
      await expectRefused(await call('/v1/stores/kv/scan', post(encodeScanRequest({ partition: 0, limit: 10_001 }))), 400, 'KV_INVALID_INPUT')
    })
  })

  it('a token guards every route but /health with 401 KV_UNAUTHORIZED', async () => {
    const guarded = createApp({ engine, logger, token: 'sekrit' })
    await unchanged(async () => {
      expect((await call('/health', undefined, guarded)).status).toBe(200)
      for (const authorization of [undefined, 'Bearer wrong', 'sekrit', 'Bearer sekrit2']) {
        const headers: Record<string, string> = authorization ? { ...BIN, authorization } : BIN
        await expectRefused(await call('/v1/stores/kv/batch', post(valid(), headers), guarded), 401, 'KV_UNAUTHORIZED')
        await expectRefused(await call('/v1/cluster', { headers }, guarded), 401, 'KV_UNAUTHORIZED')
        await expectRefused(await call('/metrics', { headers }, guarded), 401, 'KV_UNAUTHORIZED')
      }
    })
    const ok = await call('/v1/stores/kv/batch', post(valid(), { ...BIN, authorization: 'Bearer sekrit' }), guarded)
    expect(ok.status).toBe(200)
  })

  it('an unknown route or method is 404 KV_NOT_FOUND', async () => {
    await unchanged(async () => {
      await expectRefused(await call('/nope'), 404, 'KV_NOT_FOUND')
      await expectRefused(await call('/v1/stores/kv/batch'), 404, 'KV_NOT_FOUND')
      // The coordinate route went with store batches: its writes travel in a batch's coordinate section.
      await expectRefused(await call('/v1/stores/kv/coordinate', post(encodeCoordinate([write('fresh')]))), 404, 'KV_NOT_FOUND')
      await expectRefused(await call('/v1/stores/kv/delete', post(valid())), 404, 'KV_NOT_FOUND')
    })
  })

  it('an invalid cluster definition is 400 and an older one 409; the held one stays', async () => {
    const put = (body: string) => call('/v1/cluster', { method: 'PUT', headers: { 'content-type': 'application/json' }, body })
    await unchanged(async () => {
      await expectRefused(await put('not json'), 400, 'KV_INVALID_INPUT')
      await expectRefused(await put(''), 400, 'KV_INVALID_INPUT')
      await expectRefused(await put('{"version":2}'), 400, 'KV_INVALID_INPUT')
      await expectRefused(await put(JSON.stringify({ ...CLUSTER, version: 2, partitions: 3 })), 400, 'KV_INVALID_INPUT')
      await expectRefused(await put(JSON.stringify({ ...CLUSTER, version: 2, stores: [{ name: 'bad name' }] })), 400, 'KV_INVALID_INPUT')
      await expectRefused(await put(JSON.stringify({ ...CLUSTER, stores: [] })), 409, 'KV_CLUSTER_VERSION_CONFLICT')
    })
    expect(await (await call('/v1/cluster')).json()).toEqual(CLUSTER)
    const newer = await put(JSON.stringify({ ...CLUSTER, version: 2 }))
    expect(newer.status).toBe(200)
    expect(newer.headers.get('x-kvorum-cluster-version')).toBe('2')
  })
})
