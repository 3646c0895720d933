import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
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

  it('alters quorums, and refuses n, unknown fields and unknown stores with a clear error, changing nothing', async () => {
    const altered = await kvorum('store', 'alter', 'carts:w=2,maxSiblings=10')
    expect(altered.code, altered.stderr).toBe(0)
    expect(altered.stdout).toMatch(/cluster version 3 on every node: carts .* w=2 .*maxSiblings=10/)
    const n = await kvorum('store', 'alter', 'carts:n=2')
    expect(n.code).toBe(1)
    expect(n.stderr).toMatch(/KV_INVALID_INPUT: store carts: n is 3; changing it moves every partition's replicas/)
    const field = await kvorum('store', 'alter', 'carts:quorum=2')
    expect(field.code).toBe(2)
    expect(field.stderr).toMatch(/unknown field quorum/)
    const missing = await kvorum('store', 'alter', 'nope:w=1')
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/KV_UNKNOWN_STORE/)
    const again = await kvorum('store', 'create', 'carts')
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/store carts already exists: change its settings with kvorum store alter/)
    expect((await cluster.replica('n2').getCluster({ timeoutMs: 2000 }))?.version).toBe(3)
  })
})
