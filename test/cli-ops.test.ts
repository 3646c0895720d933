import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePorts, killLeftovers, runCli } from './support/cli-ops.js'
import { type NodeProcess, startNode } from './support/node-process.js'
import { type ProcessCluster, startCluster } from './support/process-cluster.js'

/*
 * status, repair and a wrong token through the real binary, against one
 * cluster of three real nodes. The cases run in order and each leaves the
 * cluster as the next expects (n2 replaced by an empty node, then n3 down).
 */
describe('kvorum status / repair / a wrong token', () => {
  let c: ProcessCluster
  let scratch: string
  let closedPort: number
  let emptyN2: NodeProcess | undefined
  const seed = () => c.seeds[0] as string
  const auth = () => ['--seeds', seed(), '--token', c.token]

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'kvorum-cli-ops-'))
    c = await startCluster({ nodes: 3, partitions: 16 })
    const kv = await c.connect()
    const store = kv.store<string>('default', { codec: 'utf8' })
    for (let i = 0; i < 20; i++) await store.put(`k${i}`, `v${i}`)
    await kv.close()
    closedPort = await freePorts(1)
  })
  afterAll(async () => {
    await killLeftovers()
    await emptyN2?.stop()
    await c?.close()
    rmSync(scratch, { recursive: true, force: true })
  })

  it('a wrong token is KV_UNAUTHORIZED naming every seed and its answer, from get and from status (it was KV_BOOTSTRAP_FAILED)', async () => {
    const seeds = `http://127.0.0.1:${closedPort},${seed()}`
    for (const command of [['get', 'default', 'k1'], ['status']]) {
      const res = await runCli([...command, '--seeds', seeds, '--token', 'not-the-token'])
      expect(res.code).toBe(1)
      const line = res.stderr.trim()
      expect(line).toMatch(/^kvorum: KV_UNAUTHORIZED: the seeds refused the token: check /)
      expect(line).toContain(`http://127.0.0.1:${closedPort}: `)
      expect(line).toContain('ECONNREFUSED')
      expect(line).toContain(`${seed()}: missing or wrong token`)
      expect(line.split('\n')).toHaveLength(1)
    }
  })

  it('the init and unknown-store errors point at commands that exist', async () => {
    const init = await runCli(['cluster', 'init', '--nodes', seed(), '--store', 'other:n=1,r=1,w=1', '--token', c.token])
    expect(init.code).toBe(1)
    expect(init.stderr.trim()).toBe(
      `kvorum: KV_CLUSTER_EXISTS: ${seed()} already holds cluster version 1 with different settings: init writes only a first definition; change nodes with kvorum cluster rebalance and stores with kvorum store create|alter, or wipe that node's data directory`,
    )
    const get = await runCli(['get', 'carts', 'k1', ...auth()])
    expect(get.code).toBe(1)
    expect(get.stderr).toContain('unknown store "carts": create it with kvorum store create carts:n=3,r=2,w=2 --seeds URL')
  })

  it('status with no seed holding a definition keeps each seed reason', async () => {
    const lonely = await startNode({ data: join(scratch, 'lonely'), id: 'lonely', token: c.token })
    try {
      const res = await runCli(['status', '--seeds', `http://127.0.0.1:${closedPort},${lonely.url}`, '--token', c.token])
      expect(res.code).toBe(1)
      expect(res.stderr).toContain('KV_BOOTSTRAP_FAILED: no seed answered with a cluster definition: ')
      expect(res.stderr).toMatch(new RegExp(`http://127.0.0.1:${closedPort}: \\S+: ECONNREFUSED`))
      expect(res.stderr).toContain(`${lonely.url}: holds no cluster definition yet (run kvorum cluster init)`)
    } finally {
      await lonely.stop()
    }
  })

  it('status marks a node that holds no cluster definition, and exits 1', async () => {
    const port = c.nodes.get('n2')?.port as number
    await c.kill('n2')
    emptyN2 = await startNode({ data: join(scratch, 'n2-empty'), id: 'n2', port, token: c.token })
    const res = await runCli(['status', ...auth()])
    expect(res.code).toBe(1)
    expect(res.stdout).toMatch(/^n2 +up +NONE \(new or wiped\) /m)
    expect(res.stdout).toMatch(/^n1 +up +v1 /m)
    expect(res.stdout).toContain('n2: not on the newest definition')
    const json = JSON.parse((await runCli(['status', '--json', ...auth()])).stdout)
    expect(json.nodes.map((n: { id: string; definition: string }) => [n.id, n.definition])).toEqual([
      ['n1', 'current'],
      ['n2', 'none'],
      ['n3', 'current'],
    ])
  })

  it('repair hands the empty node the definition, refills it and says so; status is clean after', async () => {
    const res = await runCli(['repair', '--json', ...auth()])
    expect(res.code).toBe(0)
    const report = JSON.parse(res.stdout)
    expect(report.keysRepaired).toBe(20)
    expect(report.replicasSkipped).toBe(0)
    expect(report.partitionsSkipped).toBe(0)
    expect(report.replicas.find((r: { id: string }) => r.id === 'n2')).toMatchObject({
      skipped: false,
      note: 'held no cluster definition (new or wiped): handed version 1, refilled by this pass',
    })
    expect((await runCli(['status', ...auth()])).code).toBe(0)
  })

  it('repair with a replica down names it, counts what it skipped and exits 1 (it said "0 differed" and exited 0)', async () => {
    await c.kill('n3')
    const res = await runCli(['repair', ...auth()])
    expect(res.code).toBe(1)
    expect(res.stdout).toContain('16/16 partitions (0 differed, 16 skipped: not every replica answered)')
    expect(res.stdout).toMatch(/^n3 http:\/\/127\.0\.0\.1:\d+: not reached: .*ECONNREFUSED/m)
    expect(res.stdout).toContain('1 of 3 replicas skipped: ')
  })

  it('status marks a node whose definition is older than the newest one seen', async () => {
    // A newer version on n1 only, as in the middle of a change.
    await c.replica('n1').putCluster({ timeoutMs: 5000 }, { ...c.def, version: 2 })
    const res = await runCli(['status', ...auth()])
    expect(res.code).toBe(1)
    expect(res.stdout).toMatch(/^n1 +up +v2 /m)
    expect(res.stdout).toMatch(/^n2 +up +v1 OLDER than v2 /m)
    expect(res.stdout).toMatch(/^n3 +DOWN /m)
  })
})
