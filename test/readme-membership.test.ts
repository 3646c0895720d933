import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, expect, it } from 'vitest'
import { type NodeProcess, startNode } from './support/node-process.js'
import { type ProcessCluster, startCluster } from './support/process-cluster.js'

const root = fileURLToPath(new URL('..', import.meta.url))
let cluster: ProcessCluster | undefined
let joiner: NodeProcess | undefined
let dir: string | undefined
afterEach(async () => {
  await joiner?.stop()
  await cluster?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
  cluster = undefined
  joiner = undefined
  dir = undefined
})

/** The README's "Growing and shrinking the cluster" commands, one per line. */
function walkThrough(): string[] {
  const readme = readFileSync(`${root}README.md`, 'utf8')
  const section = readme.slice(readme.indexOf('## Growing and shrinking the cluster'))
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1]
  expect(block, 'the README has the walk-through').toBeDefined()
  return (block as string).split('\n').filter((line) => line.trim() !== '')
}

it('the README walk-through grows the cluster by one node and shrinks it back, with the data readable all along', async () => {
  const lines = walkThrough()
  expect(lines.some((l) => l.includes('cluster rebalance --add'))).toBe(true)
  expect(lines.some((l) => l.includes('cluster rebalance --remove n4'))).toBe(true)
  // Every command runs by name, as installed: `npx kvorum` and `npx kvorum-node` from the repository's root.
  expect(lines.filter((l) => !l.startsWith('TOKEN=') && !/^npx kvorum(-node)? /.test(l))).toEqual([])
  cluster = await startCluster({ partitions: 32 })
  dir = mkdtempSync(join(tmpdir(), 'kvorum-readme-'))
  const kv = await cluster.connect()
  const s = kv.store<string>('default', { codec: 'utf8' })
  for (let i = 0; i < 200; i++) await s.put(`k${i}`, `v${i}`)
  const seed = cluster.seeds[0] as string
  for (const line of lines) {
    if (line.startsWith('TOKEN=')) continue
    if (line.startsWith('npx kvorum-node ')) {
      // The test starts the fourth node itself (on a free port), so it can stop it by PID.
      joiner = await startNode({ data: join(dir, 'n4'), id: 'n4', token: cluster.token })
      continue
    }
    // The same command against this test's cluster: its seed, the joiner's port, short waits.
    let command = line.replaceAll('http://127.0.0.1:7070', seed).replaceAll('http://127.0.0.1:7073', (joiner as NodeProcess).url)
    if (command.includes('cluster rebalance')) command += ' --drain-ms 200 --grace-ms 100'
    const run = spawnSync('bash', ['-c', command], { cwd: root, env: { ...process.env, TOKEN: cluster.token }, encoding: 'utf8', timeout: 120_000 })
    expect(run.status, `${command}\n${run.stdout}\n${run.stderr}`).toBe(0)
    if (command.includes('cluster plan')) {
      expect(run.stdout).toMatch(/moved onto old nodes: 0/)
      // 200 values are stored: the plan prices the copy from the nodes' sizes.
      expect(run.stdout).toMatch(/estimated bytes to copy: [1-9][\d.]* kB/)
    }
    if (command.includes('cluster status')) expect(run.stdout).toMatch(/n4 .* version \d+/)
    for (let i = 0; i < 200; i += 37) expect((await s.get(`k${i}`)).values).toEqual([`v${i}`])
  }
  const versions = await kv.clusterVersions()
  expect(versions.map((v) => v.id).sort()).toEqual(['n1', 'n2', 'n3'])
  for (let i = 0; i < 200; i++) expect((await s.get(`k${i}`)).values).toEqual([`v${i}`])
}, 180_000)
