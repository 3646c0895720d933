/**
 * Times `kvorum import` of an export file into an empty local cluster (3
 * nodes, Q=256, n=3 r=2 w=2), then `kvorum export` of what it imported, each
 * as a separate CLI process under /usr/bin/time -v: wall time, CLI peak
 * resident memory, CPU, and each node's peak resident memory (VmHWM). The
 * figures in docs/operations.md ("Measured: 1,000,000 keys") come from it.
 *   npx tsx --conditions=kvorum-source test/bench/export-fixture.ts --keys 1000000 --value-size 100 --out /tmp/fixture.kvx
 *   npx tsx --conditions=kvorum-source test/bench/import-export.ts --file /tmp/fixture.kvx [--export] [--runs 2]
 *     [--cli other/apps/cli/dist/main.js]   another build's CLI, to compare two builds on the same machine close in time
 *     [--cli-flags="--cpu-prof --cpu-prof-dir=/tmp/prof"] [--node-flags="..."]   Node.js flags of the CLI / the nodes
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { storeDef } from '@kvorum/core'
import { initCluster } from '../../apps/cli/src/cluster-init.js'
import { type LocalNode, startNodes, stopNodes } from '../../apps/cli/src/local-cluster.js'

const { values } = parseArgs({
  options: {
    file: { type: 'string' },
    cli: { type: 'string', default: fileURLToPath(new URL('../../apps/cli/dist/main.js', import.meta.url)) },
    export: { type: 'boolean', default: false },
    runs: { type: 'string', default: '1' },
    durability: { type: 'string', default: 'normal' },
    'cli-flags': { type: 'string', default: '' },
    'node-flags': { type: 'string', default: '' },
  },
})
const words = (s: string | undefined) => (s ?? '').split(' ').filter((w) => w.length > 0)
const runs = Number(values.runs)
if (!values.file || !Number.isInteger(runs) || runs < 1 || runs > 10) {
  console.error('usage: import-export.ts --file FIXTURE.kvx [--export] [--runs N] [--cli PATH] [--cli-flags "..."] [--node-flags "..."]')
  process.exit(2)
}
const durability = values.durability === 'full' ? 'full' : 'normal'
const TOKEN = 'bench'
/** Longest one CLI run may take before it is killed (by PID), ms. */
const RUN_LIMIT_MS = 60 * 60_000

interface Timed {
  readonly code: number | null
  readonly ms: number
  readonly stdout: string
  readonly maxRssMb: number
  readonly cpuS: number
}

/** Run the CLI under /usr/bin/time -v; its peak RSS and CPU come from time's report. */
function timedCli(args: string[]): Promise<Timed> {
  const started = performance.now()
  const child = spawn('/usr/bin/time', ['-v', process.execPath, ...words(values['cli-flags']), values.cli as string, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, KVORUM_TOKEN: TOKEN },
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString()
  })
  child.stderr.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-16_384)
  })
  const limit = setTimeout(() => child.pid && process.kill(child.pid, 'SIGKILL'), RUN_LIMIT_MS)
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      clearTimeout(limit)
      const field = (name: string) => Number(new RegExp(`${name}: ([\\d.]+)`).exec(stderr)?.[1] ?? Number.NaN)
      if (code !== 0) process.stderr.write(stderr)
      resolve({
        code,
        ms: performance.now() - started,
        stdout,
        maxRssMb: field('Maximum resident set size \\(kbytes\\)') / 1024,
        cpuS: field('User time \\(seconds\\)') + field('System time \\(seconds\\)'),
      })
    })
  })
}

/** CPU a process has used so far (user + system), s. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
  // utime and stime are fields 14 and 15 of stat (11 and 12 after the command), in clock ticks of 1/100 s.
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** What the nodes used: each one's CPU (s) and peak resident memory (MB). */
function nodesUse(nodes: readonly LocalNode[]): string {
  return nodes.map((n) => `${cpuSeconds(n.pid).toFixed(1)} s CPU ${mb(peakRssMb(n.pid))}`).join(' / ')
}

const mb = (n: number) => `${n.toFixed(0)} MB`

/** A node's peak resident memory so far, MB. */
function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
}

async function cluster(): Promise<{ nodes: LocalNode[]; seeds: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'kvorum-import-bench-'))
  let nodes: LocalNode[] | undefined
  // A random port range may be taken by another program: try a few.
  for (let attempt = 0; !nodes; attempt++) {
    try {
      const basePort = 20000 + Math.floor(Math.random() * 20000)
      nodes = await startNodes({ nodes: 3, basePort, dataDir: dir, token: TOKEN, durability, logLevel: 'warn', nodeFlags: words(values['node-flags']) })
    } catch (e) {
      if (attempt >= 4) throw e
    }
  }
  const urls = nodes.map((n) => n.url)
  await initCluster({ urls, partitions: 256, stores: [storeDef({ name: 'default', n: 3, r: 2, w: 2 })], access: { token: TOKEN } })
  return { nodes, seeds: urls.join(','), dir }
}

const load = () =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')
const file = values.file as string
console.log(`${file}: ${statSync(file).size} bytes; cli ${values.cli}; durability ${durability}`)
for (let run = 1; run <= runs; run++) {
  const c = await cluster()
  try {
    const before = load()
    const imp = await timedCli(['import', file, '--seeds', c.seeds, '--json', '--timeout', '60s'])
    const summary = imp.stdout.trim()
    console.log(
      `run ${run} import: exit ${imp.code}, ${(imp.ms / 1000).toFixed(1)} s, ${summary}, CLI ${mb(imp.maxRssMb)} max RSS, ${imp.cpuS.toFixed(1)} s CPU; nodes ${nodesUse(c.nodes)} max RSS; load ${before} -> ${load()}`,
    )
    const cpuAfterImport = c.nodes.map((n) => cpuSeconds(n.pid))
    if (values.export) {
      const out = join(c.dir, 'export.kvx')
      const exp = await timedCli(['export', 'default', '--out', out, '--seeds', c.seeds, '--json'])
      const bytes = exp.code === 0 ? statSync(out).size : 0
      console.log(
        `run ${run} export: exit ${exp.code}, ${(exp.ms / 1000).toFixed(1)} s, ${exp.stdout.trim()}, ${bytes} bytes, CLI ${mb(exp.maxRssMb)} max RSS, ${exp.cpuS.toFixed(1)} s CPU; nodes ${c.nodes.map((n, i) => `${(cpuSeconds(n.pid) - (cpuAfterImport[i] ?? 0)).toFixed(1)} s CPU ${mb(peakRssMb(n.pid))}`).join(' / ')} max RSS; load ${load()}`,
      )
    }
  } finally {
    await stopNodes(c.nodes)
    rmSync(c.dir, { recursive: true, force: true })
  }
}
