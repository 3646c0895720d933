import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { type ClusterDef, type HintItem, encodeHints, encodeStoreBatch, storeDef, utf8 } from '@kvorum/core'
import { type NodeProcess, startNode, stopAllNodes } from '../../../test/support/node-process.js'
import { ENV } from './options.js'

const REQUEST_TIMEOUT_MS = 5000
/** Each test starts one process; this bounds it even without the repository's vitest config. */
const TEST_TIMEOUT_MS = 15_000
const DATA_TOKEN = 'data-secret-0123'
const METRICS_TOKEN = 'scrape-secret-4567'
const BIN = { 'content-type': 'application/octet-stream' }
const root = mkdtempSync(join(tmpdir(), 'kvorum-observe-'))
let dirs = 0
const freshDir = () => join(root, `node-${dirs++}`)
const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version

afterEach(stopAllNodes)
afterAll(() => rmSync(root, { recursive: true, force: true }))

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

function cluster(url: string): ClusterDef {
  return {
    version: 1,
    partitions: 8,
    nodes: [{ id: 'n1', url }],
    assignment: Array.from({ length: 8 }, () => 'n1'),
    stores: [storeDef({ name: 'kv', n: 1, r: 1, w: 1 }), storeDef({ name: 'empty', n: 1, r: 1, w: 1 })],
  }
}

function call(node: NodeProcess, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${node.url}${path}`, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
}

async function installCluster(node: NodeProcess, headers: Record<string, string> = {}): Promise<void> {
  const res = await call(node, '/v1/cluster', {
    method: 'PUT',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify(cluster(node.url)),
  })
  expect(res.status, await res.text()).toBe(200)
}

/** One metric family of the Prometheus text format: its type and samples. */
interface Family {
  type: string
  samples: { name: string; labels: Record<string, string>; value: number }[]
}

/** A small parser of the Prometheus text format (0.0.4): `# TYPE` lines and samples; label values without escapes. */
function parseMetrics(text: string): Map<string, Family> {
  const families = new Map<string, Family>()
  const familyOf = (sample: string) => {
    if (families.has(sample)) return families.get(sample) as Family
    const base = sample.replace(/_(bucket|sum|count)$/, '')
    const family = families.get(base)
    if (!family) throw new Error(`sample ${sample} before its # TYPE line`)
    return family
  }
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type) families.set(type[1] as string, { type: type[2] as string, samples: [] })
    if (line === '' || line.startsWith('#')) continue
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!sample) throw new Error(`not a sample line: ${line}`)
    const [, name = '', labelText = '', value = ''] = sample
    const labels = Object.fromEntries([...labelText.matchAll(/([a-zA-Z_]\w*)="([^"]*)"/g)].map((m) => [m[1], m[2]]))
    familyOf(name).samples.push({ name, labels, value: Number(value) })
  }
  return families
}

function sampleOf(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  const family = families.get(name)
  return family?.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value
}

const hint = (key: string): HintItem => ({
  store: 'kv',
  key: utf8(key),
  siblings: [{ dot: { actor: 'w', counter: 1 }, context: {}, timestamp: 1, value: utf8('v') }],
})

/** The log lines a node wrote so far, parsed: every line is one JSON object (the output kept may start mid-line). */
function logLines(node: NodeProcess): Record<string, unknown>[] {
  const lines = node.output().split('\n')
  return lines.filter((line, i) => line !== '' && (i > 0 || line.startsWith('{"level"'))).map((line) => JSON.parse(line) as Record<string, unknown>)
}

describe('kvorum-node /health readiness, through the real binary', () => {
  it(
    '/health?ready=1 is 503 KV_NO_CLUSTER until cluster init, then 200; plain /health answers throughout',
    async () => {
      const node = await startNode({ data: freshDir() })
      const before = await call(node, '/health?ready=1')
      expect(before.status).toBe(503)
      expect(await before.json()).toMatchObject({ code: 'KV_NO_CLUSTER', message: expect.stringMatching(/kvorum cluster init/) })
      expect((await call(node, '/health')).status).toBe(200)
      expect((await call(node, '/health?ready=maybe')).status).toBe(400)
      await installCluster(node)
      const after = await call(node, '/health?ready=1')
      expect(after.status).toBe(200)
      expect(await after.json()).toEqual({ status: 'ok', id: 'n1', incarnation: node.incarnation, clusterVersion: 1, keys: 0, bytes: 0 })
    },
    TEST_TIMEOUT_MS,
  )
})

describe('kvorum-node /metrics, scraped from the real binary', () => {
  it(
    'counts are *_total counters, the default metrics keep their standard names, and build, hints, stores and cluster version are there',
    async () => {
      const node = await startNode({ data: freshDir(), token: DATA_TOKEN, args: ['--metrics-token', METRICS_TOKEN] })
      await installCluster(node, bearer(DATA_TOKEN))
      const items = Array.from({ length: 5 }, (_, i) => ({ key: utf8(`k${i}`), value: utf8(`value ${i}`), context: {}, timestamp: Date.now() }))
      const batch = encodeStoreBatch({ keys: [], coordinates: items, merges: [] }) as Uint8Array<ArrayBuffer>
      expect((await call(node, '/v1/stores/kv/batch', { method: 'POST', headers: { ...BIN, ...bearer(DATA_TOKEN) }, body: batch })).status).toBe(200)
      const hints = encodeHints([hint('a'), hint('b')]) as Uint8Array<ArrayBuffer>
      expect((await call(node, '/v1/hints/n9', { method: 'POST', headers: { ...BIN, ...bearer(DATA_TOKEN) }, body: hints })).status).toBe(200)

      const res = await call(node, '/metrics', { headers: bearer(METRICS_TOKEN) })
      expect(res.status).toBe(200)
      const families = parseMetrics(await res.text())
      const ours = [...families].filter(([name]) => name.startsWith('kvorum_node_'))
      // Ours are counters exactly when named *_total.
      for (const [name, family] of ours) expect(family.type === 'counter', name).toBe(name.endsWith('_total'))
      for (const name of ['coordinated_writes', 'merged_writes', 'hints_stored', 'hints_refused', 'hints_expired', 'item_errors', 'group_commits'])
        expect(families.get(`kvorum_node_${name}_total`)?.type, name).toBe('counter')
      expect(sampleOf(families, 'kvorum_node_coordinated_writes_total')).toBe(5)
      expect(sampleOf(families, 'kvorum_node_hints_stored_total')).toBe(2)

      for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes'])
        expect(families.has(name), name).toBe(true)
      expect([...families.keys()].filter((name) => /^kvorum_node_(process|nodejs)_/.test(name))).toEqual([])

      expect(families.get('kvorum_node_build_info')?.type).toBe('gauge')
      expect(sampleOf(families, 'kvorum_node_build_info', { version, node_id: 'n1', nodejs: process.version })).toBe(1)
      expect(sampleOf(families, 'kvorum_node_cluster_version')).toBe(1)
      expect(sampleOf(families, 'kvorum_node_hints_pending', { target: 'n9' })).toBe(2)
      expect(sampleOf(families, 'kvorum_node_store_keys', { store: 'kv' })).toBe(5)
      expect(sampleOf(families, 'kvorum_node_store_keys', { store: 'empty' })).toBe(0)
      expect(sampleOf(families, 'kvorum_node_store_bytes', { store: 'kv' })).toBeGreaterThan(5 * 'k0value 0'.length)
      expect(sampleOf(families, 'kvorum_node_database_bytes')).toBeGreaterThan(0)
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'the metrics token reads /metrics and nothing else; the data token reads /metrics too',
    async () => {
      const node = await startNode({ data: freshDir(), token: DATA_TOKEN, args: ['--metrics-token', METRICS_TOKEN] })
      await installCluster(node, bearer(DATA_TOKEN))
      const refused = async (res: Response) => {
        expect(res.status).toBe(401)
        expect(await res.json()).toMatchObject({ code: 'KV_UNAUTHORIZED' })
      }
      await refused(await call(node, '/v1/cluster', { headers: bearer(METRICS_TOKEN) }))
      await refused(await call(node, '/v1/hints', { headers: bearer(METRICS_TOKEN) }))
      const batch = encodeStoreBatch({ keys: [utf8('k')], coordinates: [], merges: [] }) as Uint8Array<ArrayBuffer>
      await refused(await call(node, '/v1/stores/kv/batch', { method: 'POST', headers: { ...BIN, ...bearer(METRICS_TOKEN) }, body: batch }))
      expect((await call(node, '/metrics', { headers: bearer(METRICS_TOKEN) })).status).toBe(200)
      expect((await call(node, '/metrics', { headers: bearer(DATA_TOKEN) })).status).toBe(200)
      await refused(await call(node, '/metrics'))
      await refused(await call(node, '/metrics', { headers: bearer(`${METRICS_TOKEN}x`) }))
      expect((await call(node, '/v1/cluster', { headers: bearer(DATA_TOKEN) })).status).toBe(200)
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'a metrics token alone guards /metrics and leaves the data routes open; it can come from a file or the environment',
    async () => {
      const file = join(root, 'metrics-token')
      writeFileSync(file, `${METRICS_TOKEN}\n`)
      const fromFile = await startNode({ data: freshDir(), args: ['--metrics-token-file', file] })
      expect((await call(fromFile, '/metrics')).status).toBe(401)
      expect((await call(fromFile, '/metrics', { headers: bearer(METRICS_TOKEN) })).status).toBe(200)
      expect((await call(fromFile, '/health')).status).toBe(200)
      await installCluster(fromFile)

      // The spawned node inherits this worker's environment.
      process.env[ENV.metricsToken] = METRICS_TOKEN
      let fromEnv: NodeProcess
      try {
        fromEnv = await startNode({ data: freshDir() })
      } finally {
        delete process.env[ENV.metricsToken]
      }
      expect((await call(fromEnv, '/metrics', { headers: bearer('other') })).status).toBe(401)
      expect((await call(fromEnv, '/metrics', { headers: bearer(METRICS_TOKEN) })).status).toBe(200)
    },
    TEST_TIMEOUT_MS,
  )
})

describe('kvorum-node logs, read from the real binary', () => {
  it(
    'every line has a level name and the build version; debug adds an access line per request with the x-request-id it answers; auth failures are warn with the remote address and no token',
    async () => {
      const node = await startNode({ data: freshDir(), token: DATA_TOKEN, args: ['--log-level', 'debug'] })
      const probe = await call(node, '/health', { headers: { 'x-request-id': 'probe-1' } })
      expect(probe.headers.get('x-request-id')).toBe('probe-1')
      const plain = await call(node, '/health')
      const generated = plain.headers.get('x-request-id')
      expect(generated).toMatch(/^[0-9a-f]{8}-[0-9a-z]+$/)
      expect((await call(node, '/v1/cluster', { headers: bearer('a-wrong-token-9999') })).status).toBe(401)
      expect((await call(node, '/v1/cluster')).status).toBe(401)
      // A request id that is not sane (too long) is replaced, not echoed.
      const odd = await call(node, '/health', { headers: { 'x-request-id': 'x'.repeat(200) } })
      expect(odd.headers.get('x-request-id')).toMatch(/^[0-9a-f]{8}-[0-9a-z]+$/)
      await node.stop()

      const lines = logLines(node)
      expect(lines.length).toBeGreaterThan(5)
      for (const line of lines) {
        expect(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).toContain(line.level)
        expect(line).toMatchObject({ version, node: 'n1' })
      }
      expect(lines).toContainEqual(expect.objectContaining({ level: 'info', msg: 'kvorum-node listening' }))
      const access = lines.filter((l) => l.msg === 'request')
      expect(access).toContainEqual(
        expect.objectContaining({ level: 'debug', reqId: 'probe-1', method: 'GET', path: '/health', status: 200, ms: expect.any(Number) }),
      )
      expect(access).toContainEqual(expect.objectContaining({ reqId: generated, path: '/health', status: 200 }))
      expect(access).toContainEqual(expect.objectContaining({ path: '/v1/cluster', status: 401 }))
      const failures = lines.filter((l) => l.msg === 'authentication failed')
      expect(failures).toEqual([
        expect.objectContaining({
          level: 'warn',
          method: 'GET',
          path: '/v1/cluster',
          reason: 'wrong token',
          remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
        }),
        expect.objectContaining({ level: 'warn', path: '/v1/cluster', reason: 'no bearer token', remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/) }),
      ])
      expect(node.output()).not.toContain('a-wrong-token-9999')
      expect(node.output()).not.toContain(DATA_TOKEN)
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'at info level there is no access log, but each answer still carries its x-request-id',
    async () => {
      const node = await startNode({ data: freshDir(), args: ['--log-level', 'info'] })
      const res = await call(node, '/health')
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f]{8}-[0-9a-z]+$/)
      await node.stop()
      const lines = logLines(node)
      expect(lines.map((l) => l.msg)).toEqual(['kvorum-node listening', 'stopping: no new requests, finishing in-flight writes', 'stopped'])
      for (const line of lines) expect(line).toMatchObject({ level: 'info', version })
    },
    TEST_TIMEOUT_MS,
  )
})
