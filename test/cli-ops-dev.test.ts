import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { type Server, createServer as createHttpServer } from 'node:http'
import { type AddressInfo, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { checkHealth } from '../apps/cli/src/local-cluster.js'
import { alive, freePorts, killLeftovers, nodePids, runCli, spawnCli } from './support/cli-ops.js'

/** Listen on 127.0.0.1:`port` (0: any) and resolve the port. */
function listen(server: Server | ReturnType<typeof createServer>, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port))
  })
}

/** True when something accepts connections on 127.0.0.1:`port`. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer()
    probe.once('error', () => resolve(true))
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(false)))
  })
}

describe('kvorum dev', () => {
  let root: string
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'kvorum-dev-'))
  })
  afterEach(async () => {
    await killLeftovers()
    rmSync(root, { recursive: true, force: true })
  })

  it('a port another program holds: one line naming the port, exit non-zero, no node started (an orphan node was left running before)', async () => {
    const base = await freePorts(3)
    const blocker = createServer()
    await listen(blocker, base + 1)
    try {
      const res = await runCli(['dev', '--data', root, '--base-port', String(base)])
      expect(res.code).toBe(1)
      expect(res.stderr.trim().split('\n')).toEqual([
        `kvorum: KV_PORT_IN_USE: port ${base + 1} on 127.0.0.1 is in use (another program, or a kvorum dev still running): stop it, or pass another --base-port`,
      ])
      expect(nodePids(res.stdout)).toEqual([])
      expect(existsSync(join(root, 'n1', 'node.log'))).toBe(false)
      // The ports beside the taken one were not left to a node.
      expect(await listening(base)).toBe(false)
      expect(await listening(base + 2)).toBe(false)
    } finally {
      blocker.close()
    }
  })

  it('a bad --durability is a usage error before anything is written or started', async () => {
    const res = await runCli(['dev', '--data', root, '--durability', 'fulll'])
    expect(res.code).toBe(2)
    expect(res.stderr).toContain('kvorum dev: --durability must be normal or full, got fulll')
    expect(nodePids(res.stdout)).toEqual([])
    expect(existsSync(join(root, 'token'))).toBe(false)
  })

  it('a node that fails after the others started: every node it started is stopped, and the error points at that node and its log', async () => {
    const base = await freePorts(3)
    mkdirSync(join(root, 'n2'), { recursive: true })
    writeFileSync(join(root, 'n2', 'kvorum.db'), 'this is not a SQLite database')
    const res = await runCli(['dev', '--data', root, '--base-port', String(base)])
    expect(res.code).toBe(1)
    const pids = nodePids(res.stdout)
    expect(pids).toHaveLength(3)
    for (const pid of pids) expect(alive(pid)).toBe(false)
    expect(res.stderr).toContain(`stopped the 3 nodes this run started (pids ${pids.join(', ')})`)
    expect(res.stderr).toContain(`KV_NODE_UNAVAILABLE: n2: exited with code 1 before it was ready; its log ${join(root, 'n2', 'node.log')} ends: `)
    expect(res.stderr).toContain('file is not a database')
  })

  it('SIGTERM while the nodes start stops every one of them', async () => {
    const base = await freePorts(3)
    const dev = spawnCli(['dev', '--data', root, '--base-port', String(base)])
    expect(await dev.waitForStdout(/ {2}n3 \S+: pid \d+/, 20_000)).toBe(true)
    expect(await dev.stop('SIGTERM')).toBe(0)
    expect(dev.stderr()).toBe('')
    const pids = nodePids(dev.stdout())
    expect(pids).toHaveLength(3)
    for (const pid of pids) expect(alive(pid)).toBe(false)
  })

  it('keeps a log per node, --logs follows them with the node id, SIGTERM stops every node; data of another shape is refused and its nodes stopped', async () => {
    const base = await freePorts(3)
    const dev = spawnCli(['dev', '--data', root, '--base-port', String(base), '--logs'])
    // The followed lines interleave with dev's own output, in no fixed order.
    expect(await dev.waitForStdout(/Ctrl-C stops the cluster\./, 30_000)).toBe(true)
    expect(await dev.waitForStdout(/^n3 \| .*cluster definition installed/m, 5000)).toBe(true)
    const out = dev.stdout()
    expect(out).toContain(`(data and node logs in ${root})`)
    const pids = nodePids(out)
    expect(pids).toHaveLength(3)
    for (const id of ['n1', 'n2', 'n3']) {
      expect(out).toMatch(new RegExp(`^${id} \\| \\d\\d:\\d\\d:\\d\\d INFO kvorum-node listening`, 'm'))
      expect(readFileSync(join(root, id, 'node.log'), 'utf8')).toContain('"msg":"kvorum-node listening"')
    }
    const token = readFileSync(join(root, 'token'), 'utf8').trim()
    // The nodes read the token from its file (--token-file): neither ps nor their environment shows the secret.
    for (const pid of pids) {
      expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain(`--token-file\0${join(root, 'token')}`)
      expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).not.toContain(token)
      expect(readFileSync(`/proc/${pid}/environ`, 'utf8')).not.toContain(token)
    }
    expect(out).toContain(`--token-file ${join(root, 'token')}`)
    const put = await runCli(['put', 'default', 'k', 'v', '--seeds', `http://127.0.0.1:${base}`, '--token-file', join(root, 'token')])
    expect(put.code).toBe(0)
    expect(await dev.stop('SIGTERM')).toBe(0)
    for (const pid of pids) expect(alive(pid)).toBe(false)

    // Restarted on the same data, it keeps the cluster and what was written.
    const restart = spawnCli(['dev', '--data', root, '--base-port', String(base)])
    expect(await restart.waitForStdout(/Ctrl-C stops the cluster\./, 30_000)).toBe(true)
    expect(restart.stdout()).toContain(`restarted the cluster kept in ${root} (cluster version 1)`)
    const get = await runCli(['get', 'default', 'k', '--seeds', `http://127.0.0.1:${base}`, '--token', token])
    expect(get.stdout).toMatch(/^v\n/)
    expect(await restart.stop('SIGTERM')).toBe(0)
    for (const pid of nodePids(restart.stdout())) expect(alive(pid)).toBe(false)

    // The same data on other ports: the definition it holds names the old URLs.
    const moved = await freePorts(3)
    const again = await runCli(['dev', '--data', root, '--base-port', String(moved)])
    expect(again.code).toBe(1)
    expect(again.stderr).toContain(
      `KV_CLUSTER_EXISTS: http://127.0.0.1:${moved} already holds cluster version 1 with different settings: ${root} holds a cluster of n1 http://127.0.0.1:${base}`,
    )
    expect(again.stderr).toContain('run kvorum dev with the --nodes and --base-port it was made with, or pass a fresh --data')
    const second = nodePids(again.stdout)
    expect(second).toHaveLength(3)
    for (const pid of second) expect(alive(pid)).toBe(false)
  }, 120_000)
})

describe("kvorum dev's /health check", () => {
  it('a port answered by another process (another node id) is KV_PORT_IN_USE naming the port and the id it found', async () => {
    const impostor = createHttpServer((_req, res) => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ status: 'ok', id: 'someone-else', incarnation: 'x', clusterVersion: 0 }))
    })
    const port = await listen(impostor, 0)
    try {
      await expect(checkHealth(`http://127.0.0.1:${port}`, port, 'n2', 'abc')).rejects.toMatchObject({
        code: 'KV_PORT_IN_USE',
        message: `port ${port} is answered by another process (node id "someone-else", not n2): stop it, or pass another --base-port`,
      })
    } finally {
      impostor.close()
    }
  })
})
