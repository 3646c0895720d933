import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startNode } from '../support/node-process.js'
import { type ProcessCluster, startCluster } from '../support/process-cluster.js'

const CLI = fileURLToPath(new URL('../../apps/cli/dist/main.js', import.meta.url))
let cluster: ProcessCluster

beforeAll(async () => {
  cluster = await startCluster({ partitions: 32 })
})
afterAll(async () => {
  await cluster?.close()
})

/** Run the real `kvorum` binary with the cluster's seeds and token; resolves with its exit and output. */
function kvorum(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args, '--seeds', cluster.seeds.join(','), '--token', cluster.token], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.on('error', reject)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

describe('kvorum store create|alter|list through the real binary', () => {
  it('creates a store on every node, which then takes writes, and lists it', async () => {
    const created = await kvorum('store', 'create', 'carts:n=3,r=1,w=3,conflict=lww')
    expect(created.code, created.stderr).toBe(0)
    expect(created.stdout).toMatch(/cluster version 2 on every node: carts {2}n=3 r=1 w=3 .*conflict=lww/)
    for (const id of ['n1', 'n2', 'n3'])
      expect((await cluster.replica(id).getCluster({ timeoutMs: 2000 }))?.stores.map((s) => s.name)).toEqual(['default', 'carts'])
    const put = await kvorum('put', 'carts', 'c1', 'apple')
    expect(put.code, put.stderr).toBe(0)
    const listed = await kvorum('store', 'list', '--json')
    const body = JSON.parse(listed.stdout) as { version: number; stores: { name: string; w: number }[] }
    expect(body.version).toBe(2)
    expect(body.stores.map((s) => [s.name, s.w])).toEqual([
      ['default', 2],
      ['carts', 3],
    ])
  })

  it('alters quorums, and refuses an n the cluster cannot hold, unknown fields and unknown stores with a clear error, changing nothing', async () => {
    const altered = await kvorum('store', 'alter', 'carts:w=2,maxSiblings=10')
    expect(altered.code, altered.stderr).toBe(0)
    expect(altered.stdout).toMatch(/cluster version 3 on every node: carts .* w=2 .*maxSiblings=10/)
    const tooMany = await kvorum('store', 'alter', 'carts:n=4')
    expect(tooMany.code).toBe(1)
    expect(tooMany.stderr).toMatch(/KV_INVALID_INPUT: store carts: n must be 1\.\.3/)
    const field = await kvorum('store', 'alter', 'carts:quorum=2')
    expect(field.code).toBe(2)
    expect(field.stderr).toMatch(/unknown field quorum/)
    const missing = await kvorum('store', 'alter', 'nope:w=1')
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/KV_UNKNOWN_STORE/)
    const again = await kvorum('store', 'create', 'carts')
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/store carts already exists with other settings: change them with kvorum store alter/)
    expect((await cluster.replica('n2').getCluster({ timeoutMs: 2000 }))?.version).toBe(3)
  })

  it('a new n runs as a rebalance, lowering the quorums first, and every key stays readable', async () => {
    for (let i = 0; i < 20; i++) expect((await kvorum('put', 'carts', `c${i}`, `v${i}`)).code).toBe(0)
    const changed = await kvorum('store', 'alter', 'carts:n=2,r=1,w=1', '--drain-ms', '200', '--grace-ms', '100')
    expect(changed.code, changed.stderr).toBe(0)
    expect(changed.stderr).toMatch(/store carts: n → 2 drops 32 replica-partitions at cleanup, as a rebalance/)
    expect(changed.stderr).toMatch(/step 1\/1 write-both \[copy\]/)
    expect(changed.stdout).toMatch(/on every node: carts {2}n=2 r=1 w=1 /)
    for (const id of ['n1', 'n2', 'n3']) {
      const def = await cluster.replica(id).getCluster({ timeoutMs: 2000 })
      expect(def?.move).toBeUndefined()
      expect(def?.stores.find((s) => s.name === 'carts')?.n).toBe(2)
    }
    for (let i = 0; i < 20; i++) expect((await kvorum('get', 'carts', `c${i}`)).stdout).toMatch(new RegExp(`^v${i}$`, 'm'))
  }, 60_000)
})

describe('a store ttlMs through the real binary and nodes', () => {
  it('create sets it, a put then expires on every node and reads as not found, and alter ttlMs=0 removes it', async () => {
    const created = await kvorum('store', 'create', 'sessions:ttlMs=1500')
    expect(created.code, created.stderr).toBe(0)
    expect(created.stdout).toMatch(/on every node: sessions .* ttlMs=1500/)
    const before = Date.now()
    expect((await kvorum('put', 'sessions', 's1', 'token')).code).toBe(0)
    const after = Date.now()
    // Every replica holds the expiry the coordinating node stamped (read over HTTP, so through the wire
    // format): its clock at the write plus the store's ttl. (A second CLI run could take longer than the ttl.)
    const stamped = new Set<number | undefined>()
    for (const id of ['n1', 'n2', 'n3']) {
      const [res] = await cluster.replica(id).get({ timeoutMs: 2000 }, 'sessions', [new TextEncoder().encode('s1')])
      if (res?.ok) for (const v of res.value) stamped.add(v.expiresAt)
    }
    const [expiresAt] = [...stamped]
    expect(stamped.size).toBe(1)
    expect(expiresAt).toBeGreaterThanOrEqual(before + 1500)
    expect(expiresAt).toBeLessThanOrEqual(after + 1500)
    await new Promise((r) => setTimeout(r, Math.max(0, (expiresAt ?? 0) - Date.now() + 100)))
    const expired = await kvorum('get', 'sessions', 's1', '--json')
    expect(JSON.parse(expired.stdout)).toMatchObject({ found: false, values: [], siblings: 0 })
    const removed = await kvorum('store', 'alter', 'sessions:ttlMs=0')
    expect(removed.code, removed.stderr).toBe(0)
    expect(removed.stdout).not.toMatch(/ttlMs/)
    expect((await kvorum('put', 'sessions', 's2', 'kept')).code).toBe(0)
    await new Promise((r) => setTimeout(r, 1600))
    expect((await kvorum('get', 'sessions', 's2')).stdout).toMatch(/^kept$/m)
    const [kept] = await cluster.replica('n1').get({ timeoutMs: 2000 }, 'sessions', [new TextEncoder().encode('s2')])
    expect(kept?.ok && kept.value.map((v) => v.expiresAt)).toEqual([undefined])
    const bad = await kvorum('store', 'alter', 'sessions:ttlMs=-4')
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(/KV_INVALID_INPUT: .*ttlMs must be 1\.\./)
  }, 60_000)
})

describe('kvorum cluster plan takes a joiner as host:port, as --seeds does', () => {
  it('plans the add of a node named without a scheme, and changes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvorum-joiner-'))
    const joiner = await startNode({ data: dir, id: 'n9', token: cluster.token })
    try {
      const before = (await cluster.replica('n1').getCluster({ timeoutMs: 2000 }))?.version
      const plan = await kvorum('cluster', 'plan', '--add', `127.0.0.1:${joiner.port}`)
      expect(plan.code, plan.stderr).toBe(0)
      expect(plan.stdout).toMatch(/n9 +0 → +\d+/)
      expect(plan.stdout).toMatch(/estimated bytes to copy: /)
      expect((await cluster.replica('n1').getCluster({ timeoutMs: 2000 }))?.version).toBe(before)
    } finally {
      await joiner.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
