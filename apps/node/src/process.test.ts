import { mkdtempSync, rmSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import {
  type ClusterDef,
  type CoordinateItem,
  type CoordinateResult,
  type ItemResult,
  type NodeHealth,
  type SiblingSet,
  covers,
  decodeAckResults,
  decodeSetResults,
  decodeStoreBatchResults,
  encodeHints,
  encodeStoreBatch,
  encodeKeys,
  fromUtf8,
  setContext,
  storeDef,
  utf8,
} from '@kvorum/core'
import { type NodeProcess, startNode, stopAllNodes } from '../../../test/support/node-process.js'

const BIN = { 'content-type': 'application/octet-stream' }
const REQUEST_TIMEOUT_MS = 5000
/** Each test starts two or three processes; this bounds it even without the repository's vitest config. */
const TEST_TIMEOUT_MS = 15_000
const root = mkdtempSync(join(tmpdir(), 'kvorum-process-'))
let dirs = 0
const freshDir = () => join(root, `node-${dirs++}`)

afterEach(stopAllNodes)
afterAll(() => rmSync(root, { recursive: true, force: true }))

function cluster(url: string): ClusterDef {
  return {
    version: 1,
    partitions: 8,
    nodes: [{ id: 'n1', url }],
    assignment: Array.from({ length: 8 }, () => 'n1'),
    stores: [storeDef({ name: 'kv', n: 1, r: 1, w: 1 })],
  }
}

async function installCluster(node: NodeProcess): Promise<void> {
  const res = await fetch(`${node.url}/v1/cluster`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(cluster(node.url)),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  })
  expect(res.status, await res.text()).toBe(200)
}

async function health(node: NodeProcess): Promise<NodeHealth> {
  const res = await fetch(`${node.url}/health`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
  return (await res.json()) as NodeHealth
}

/** A store batch of writes to coordinate only. */
const coordinateBatch = (items: readonly CoordinateItem[]) => encodeStoreBatch({ keys: [], coordinates: items, merges: [] })

/** One batch of writes to coordinate; throws unless the node answered 200 with every item ok. */
async function coordinate(node: NodeProcess, items: readonly CoordinateItem[]): Promise<CoordinateResult[]> {
  const res = await fetch(`${node.url}/v1/stores/kv/batch`, {
    method: 'POST',
    headers: BIN,
    body: coordinateBatch(items) as Uint8Array<ArrayBuffer>,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  })
  if (res.status !== 200) throw new Error(`batch answered ${res.status}: ${await res.text()}`)
  return decodeStoreBatchResults(new Uint8Array(await res.arrayBuffer())).coordinates.map((r) => {
    if (!r.ok) throw new Error(`item refused: ${r.error.code}`)
    return r.value
  })
}

async function getAll(node: NodeProcess, keys: readonly string[]): Promise<ItemResult<SiblingSet>[]> {
  const out: ItemResult<SiblingSet>[] = []
  for (let i = 0; i < keys.length; i += 1000) {
    const res = await fetch(`${node.url}/v1/stores/kv/get`, {
      method: 'POST',
      headers: BIN,
      body: encodeKeys(keys.slice(i, i + 1000).map(utf8)) as Uint8Array<ArrayBuffer>,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    })
    expect(res.status).toBe(200)
    out.push(...decodeSetResults(new Uint8Array(await res.arrayBuffer())))
  }
  return out
}

const item = (key: string, context = {}): CoordinateItem => ({ key: utf8(key), value: utf8(`value-of-${key}`), context, timestamp: Date.now() })

/** Write each key in its own request, `concurrency` at a time; every one must be acknowledged. */
async function writeAll(node: NodeProcess, keys: readonly string[], concurrency: number): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < keys.length) await coordinate(node, [item(keys[next++] as string)])
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
}

/** Every key reads back with the value it was written with. */
async function expectAllPresent(node: NodeProcess, keys: readonly string[]): Promise<void> {
  const results = await getAll(node, keys)
  const missing = keys.filter((key, i) => {
    const r = results[i]
    return !r?.ok || !r.value.some((v) => v.value !== null && fromUtf8(v.value) === `value-of-${key}`)
  })
  expect(missing).toEqual([])
}

describe('kvorum-node process: acknowledged writes survive restarts', () => {
  const keys = Array.from({ length: 200 }, (_, i) => `key-${i}`)

  it(
    'durability full: every acknowledged write is there after SIGKILL right after the last ack',
    async () => {
      const data = freshDir()
      const first = await startNode({ data, durability: 'full' })
      await installCluster(first)
      await writeAll(first, keys, 16)
      expect(await first.kill9()).toEqual({ code: null, signal: 'SIGKILL' })
      const second = await startNode({ data, durability: 'full' })
      await expectAllPresent(second, keys)
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'durability normal: every acknowledged write is there after SIGKILL (a process crash)',
    async () => {
      const data = freshDir()
      const first = await startNode({ data, durability: 'normal' })
      await installCluster(first)
      await writeAll(first, keys, 16)
      await first.kill9()
      await expectAllPresent(await startNode({ data }), keys)
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'durability normal: every acknowledged write is there after a clean SIGTERM, which exits 0',
    async () => {
      const data = freshDir()
      const first = await startNode({ data, durability: 'normal' })
      await installCluster(first)
      await writeAll(first, keys, 16)
      expect(await first.stop('SIGTERM')).toEqual({ code: 0, signal: null })
      await expectAllPresent(await startNode({ data }), keys)
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'SIGTERM while writes are in flight: every write that got a 200 is there after restart',
    async () => {
      const data = freshDir()
      const first = await startNode({ data, durability: 'normal' })
      await installCluster(first)
      let exited = false
      void first.exited.then(() => (exited = true))
      const acked: string[] = []
      let refused = 0
      const deadline = Date.now() + 7000
      const writer = async (w: number) => {
        for (let i = 0; !exited && Date.now() < deadline; i++) {
          const key = `inflight-${w}-${i}`
          try {
            await coordinate(first, [item(key)])
            acked.push(key)
          } catch {
            refused++
            await new Promise((resolve) => setTimeout(resolve, 5))
          }
        }
      }
      const writers = Promise.all(Array.from({ length: 16 }, (_, w) => writer(w)))
      while (acked.length < 150 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
      expect(acked.length).toBeGreaterThanOrEqual(150)
      const signalledMs = Date.now()
      const exit = await first.stop('SIGTERM')
      const stopMs = Date.now() - signalledMs
      await writers
      expect(exit).toEqual({ code: 0, signal: null })
      // Writers keep their keep-alive connections busy: the node must still stop promptly, not at its 5 s deadline.
      expect(stopMs).toBeLessThan(2500)
      expect(refused).toBeGreaterThan(0)
      const second = await startNode({ data })
      await expectAllPresent(second, acked)
    },
    TEST_TIMEOUT_MS,
  )
})

describe('kvorum-node process: graceful stop', () => {
  it(
    'a request half-sent at SIGTERM is still answered, kept, and the node exits promptly',
    async () => {
      const data = freshDir()
      const first = await startNode({ data })
      await installCluster(first)
      const agent = new Agent({ keepAlive: true, maxSockets: 1 })
      try {
        const frame = coordinateBatch([item('half-sent')])
        const answer = new Promise<number>((resolve, reject) => {
          const req = request(
            `${first.url}/v1/stores/kv/batch`,
            { method: 'POST', agent, headers: { ...BIN, 'content-length': String(frame.length) }, timeout: REQUEST_TIMEOUT_MS },
            (res) => {
              res.resume()
              res.on('end', () => resolve(res.statusCode ?? 0))
            },
          )
          req.on('error', reject)
          req.on('timeout', () => req.destroy(new Error('request timed out')))
          req.write(frame.subarray(0, 4))
          // The node stops while this body is still arriving; the client keeps its connection for reuse.
          setTimeout(() => {
            process.kill(first.pid, 'SIGTERM')
            setTimeout(() => req.end(frame.subarray(4)), 200)
          }, 200)
        })
        const signalledMs = Date.now() + 200
        expect(await answer).toBe(200)
        // The one SIGTERM is enough: a second, sent while the node is already exiting, could meet
        // the runtime's own teardown (signal handlers gone) and kill it by signal instead.
        expect(await first.exited).toEqual({ code: 0, signal: null })
        expect(Date.now() - signalledMs).toBeLessThan(2500)
      } finally {
        agent.destroy()
      }
      await expectAllPresent(await startNode({ data }), ['half-sent'])
    },
    TEST_TIMEOUT_MS,
  )
})

describe('kvorum-node process: incarnations', () => {
  it(
    'a restart, with or without wiping the data, takes a new incarnation whose dots the old context does not cover',
    async () => {
      const data = freshDir()
      const first = await startNode({ data })
      await installCluster(first)
      const firstHealth = await health(first)
      expect(firstHealth).toMatchObject({ id: 'n1', clusterVersion: 1, incarnation: first.incarnation })
      const [before] = await coordinate(first, [item('k')])
      const oldContext = setContext(before?.siblings ?? [])
      await first.stop()

      // Same data: the cluster and the value are kept, the actor is new.
      const second = await startNode({ data })
      const secondHealth = await health(second)
      expect(secondHealth.clusterVersion).toBe(1)
      expect(secondHealth.incarnation).not.toBe(firstHealth.incarnation)
      const [after] = await coordinate(second, [{ ...item('k'), value: utf8('after-restart') }])
      expect(after?.dot.actor).toBe(secondHealth.incarnation)
      expect(covers(oldContext, after?.dot ?? { actor: '', counter: 0 })).toBe(false)
      // Written with no context, the new version is a sibling of the old one, not its replacement.
      expect((after?.siblings ?? []).map((v) => v.value && fromUtf8(v.value)).sort()).toEqual(['after-restart', 'value-of-k'])
      await second.stop()

      // Wiped data: nothing is kept, and the actor is new again.
      rmSync(data, { recursive: true, force: true })
      const third = await startNode({ data })
      const thirdHealth = await health(third)
      expect(thirdHealth.clusterVersion).toBe(0)
      expect([firstHealth.incarnation, secondHealth.incarnation]).not.toContain(thirdHealth.incarnation)
      await installCluster(third)
      expect(await getAll(third, ['k'])).toEqual([{ ok: true, value: [] }])
      // Even a writer holding the old context cannot have its new version hidden by it.
      const [rewritten] = await coordinate(third, [item('k', oldContext)])
      expect(rewritten?.dot.actor).toBe(thirdHealth.incarnation)
      expect(covers(oldContext, rewritten?.dot ?? { actor: '', counter: 0 })).toBe(false)
    },
    TEST_TIMEOUT_MS,
  )
})

describe('kvorum-node process: hint bounds', () => {
  it(
    '--max-hints bounds the keys kept per target: past it, new hints get KV_HINT_BACKLOG_FULL',
    async () => {
      const node = await startNode({ data: freshDir(), args: ['--max-hints', '2'] })
      await installCluster(node)
      const put = async (key: string) => {
        const body = encodeHints([
          { store: 'kv', key: utf8(key), siblings: [{ dot: { actor: 'a', counter: 1 }, context: {}, timestamp: 1, value: utf8('v') }] },
        ])
        const res = await fetch(`${node.url}/v1/hints/n9`, {
          method: 'POST',
          headers: BIN,
          body: body as Uint8Array<ArrayBuffer>,
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        })
        expect(res.status).toBe(200)
        return decodeAckResults(new Uint8Array(await res.arrayBuffer()))[0]
      }
      expect(await put('a')).toEqual({ ok: true, value: null })
      expect(await put('b')).toEqual({ ok: true, value: null })
      expect(await put('c')).toMatchObject({ ok: false, error: { code: 'KV_HINT_BACKLOG_FULL' } })
      // A key already hinted is merged, not counted again.
      expect(await put('a')).toEqual({ ok: true, value: null })
    },
    TEST_TIMEOUT_MS,
  )
})
