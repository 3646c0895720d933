import { mkdtempSync, rmSync } from 'node:fs'
import { type Server, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { alive, freePorts, killLeftovers, nodePids, runCli, spawnCli } from './support/cli-ops.js'
import { type ProcessCluster, startCluster } from './support/process-cluster.js'

/** The URL a dashboard printed ("dashboard: http://..."). */
function printedUrl(stdout: string): string {
  const m = /^dashboard: (http:\/\/127\.0\.0\.1:\d+)$/m.exec(stdout)
  if (!m?.[1]) throw new Error(`no dashboard URL in:\n${stdout}`)
  return m[1]
}

interface State {
  nodes: { id: string; up: boolean }[]
  partitions: number
}

async function state(url: string): Promise<State> {
  const res = await fetch(`${url}/api/state`)
  expect(res.status).toBe(200)
  return (await res.json()) as State
}

describe('kvorum dashboard', () => {
  let cluster: ProcessCluster
  beforeAll(async () => {
    cluster = await startCluster({ nodes: 3, partitions: 32 })
  })
  afterAll(() => cluster?.close())
  afterEach(() => killLeftovers())

  it('serves the page and its live state on loopback, and stops on SIGTERM', async () => {
    const cli = spawnCli(['dashboard', '--seeds', cluster.seeds[0] as string, '--port', '0'], { KVORUM_TOKEN: cluster.token })
    expect(await cli.waitForStdout(/^dashboard: http/m, 15_000), cli.stderr()).toBe(true)
    const url = printedUrl(cli.stdout())
    const page = await fetch(url)
    expect(page.headers.get('content-type')).toMatch(/^text\/html/)
    expect(await page.text()).toContain('<title>Kvorum dashboard</title>')
    const script = await fetch(`${url}/dashboard.js`)
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/)
    const s = await state(url)
    expect(s.partitions).toBe(32)
    expect(s.nodes.map((n) => [n.id, n.up])).toEqual([
      ['n1', true],
      ['n2', true],
      ['n3', true],
    ])
    const ring = (await (await fetch(`${url}/api/ring`)).json()) as { owner: number[] }
    expect(ring.owner).toHaveLength(32)
    expect((await fetch(`${url}/nothing-here`)).status).toBe(404)
    expect(await cli.stop('SIGTERM')).toBe(0)
    expect(alive(cli.pid)).toBe(false)
    expect(cli.stderr()).toBe('')
  })

  it('--repair-every runs anti-entropy passes and reports the last one', async () => {
    const cli = spawnCli(['dashboard', '--seeds', cluster.seeds[0] as string, '--port', '0', '--repair-every', '1s'], { KVORUM_TOKEN: cluster.token })
    expect(await cli.waitForStdout(/^dashboard: http/m, 15_000), cli.stderr()).toBe(true)
    const url = printedUrl(cli.stdout())
    await expect
      .poll(
        async () => ((await (await fetch(`${url}/api/state`)).json()) as { antiEntropy: { report?: { partitionsDone: number } } | null }).antiEntropy?.report,
        {
          timeout: 20_000,
          interval: 250,
        },
      )
      .toMatchObject({ partitionsTotal: 32, partitionsDone: 32, partitionsSkipped: 0 })
    expect(await cli.stop('SIGTERM')).toBe(0)
  })

  it('a taken --port: one line with KV_PORT_IN_USE naming it, exit 1', async () => {
    const blocker: Server = createServer()
    const port = await new Promise<number>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as AddressInfo).port)))
    try {
      const res = await runCli(['dashboard', '--seeds', cluster.seeds[0] as string, '--token', cluster.token, '--port', String(port)])
      expect(res.code).toBe(1)
      expect(res.stderr.trim().split('\n')).toEqual([`kvorum: KV_PORT_IN_USE: port ${port} on 127.0.0.1 is in use: stop what holds it, or pass another --port`])
    } finally {
      blocker.close()
    }
  })

  it('bad flags are usage errors before anything connects', async () => {
    const interval = await runCli(['dashboard', '--seeds', '127.0.0.1:1', '--interval', '10ms'])
    expect(interval.code).toBe(2)
    expect(interval.stderr).toContain('kvorum dashboard: --interval must be 250ms..60s, got 10ms')
    const port = await runCli(['dashboard', '--seeds', '127.0.0.1:1', '--port', '70000'])
    expect(port.code).toBe(2)
    expect(port.stderr).toContain('kvorum dashboard: --port must be an integer 0..65535, got 70000')
    const seeds = await runCli(['dashboard'], 20_000, { KVORUM_SEEDS: '' })
    expect(seeds.code).toBe(2)
    expect(seeds.stderr).toContain('--seeds host:port[,host:port...] is required')
  })
})

describe('kvorum dev', () => {
  let root: string
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'kvorum-dev-dashboard-'))
  })
  afterAll(async () => {
    await killLeftovers()
    rmSync(root, { recursive: true, force: true })
  })

  it('starts the dashboard, prints its URL, and stops it with the cluster', async () => {
    const base = await freePorts(3)
    const dev = spawnCli(['dev', '--data', root, '--base-port', String(base), '--dashboard-port', '0'])
    expect(await dev.waitForStdout(/^dashboard: http/m, 30_000), dev.stderr()).toBe(true)
    const url = printedUrl(dev.stdout())
    const s = await state(url)
    expect(s.nodes.map((n) => n.id)).toEqual(['n1', 'n2', 'n3'])
    expect(s.nodes.every((n) => n.up)).toBe(true)
    expect(await dev.stop('SIGTERM')).toBe(0)
    for (const pid of nodePids(dev.stdout())) expect(alive(pid)).toBe(false)
    await expect(fetch(url)).rejects.toThrow()
    expect(dev.stderr()).toBe('')
  }, 60_000)
})
