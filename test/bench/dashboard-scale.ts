/**
 * The dashboard at scale: 24 real kvorum-node processes and 1,024 partitions
 * (the issue's "1,000 partitions and 24 nodes"), the dashboard in this
 * process, the page in headless Chromium. Prints the page's load time (to
 * every partition and node drawn), the browser's work per update (script,
 * layout and style time from the DevTools Performance metrics), the
 * server's poll time and the JSON sizes.
 *   npx tsc -b && npx tsx --conditions=kvorum-source test/bench/dashboard-scale.ts [--nodes 24] [--partitions 1024] [--updates 20]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { HttpTransport, connect } from '@kvorum/client'
import { type ClusterDef, type NodeDef, initialAssignment, storeDef } from '@kvorum/core'
import { startDashboard } from '../../apps/cli/src/dashboard/command.js'
import { launchBrowser, screenshot } from '../support/browser.js'
import { type NodeProcess, startNode } from '../support/node-process.js'

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '24' },
    partitions: { type: 'string', default: '1024' },
    updates: { type: 'string', default: '20' },
    keys: { type: 'string', default: '20000' },
  },
})
const nodes = Number(values.nodes)
const partitions = Number(values.partitions)
const updates = Number(values.updates)
const keys = Number(values.keys)

/** Milliseconds with one decimal. */
const ms = (n: number) => `${n.toFixed(1)} ms`

/** One node at a time, each with a minute to get ready: 24 at once do not start in time on a busy 2-core machine. */
async function startNodes(root: string, token: string, started: NodeProcess[]): Promise<NodeDef[]> {
  const defs: NodeDef[] = []
  for (let i = 1; i <= nodes; i++) {
    const proc = await startNode({ data: join(root, `n${i}`), id: `n${i}`, token, readyTimeoutMs: 60_000 })
    started.push(proc)
    defs.push({ id: `n${i}`, url: proc.url })
  }
  const def: ClusterDef = { version: 1, partitions, nodes: defs, assignment: initialAssignment(defs, partitions), stores: [storeDef({ name: 'default' })] }
  const transport = new HttpTransport({ token })
  for (const n of defs) await transport.node(n).putCluster({ timeoutMs: 10_000 }, def)
  await transport.close()
  return defs
}

const root = mkdtempSync(join(tmpdir(), 'kvorum-dashboard-scale-'))
const token = 'bench-token'
const started: NodeProcess[] = []
const startedAt = performance.now()
let close = async () => {}
try {
  const defs = await startNodes(root, token, started)
  console.log(`${nodes} nodes started in ${ms(performance.now() - startedAt)}`)
  const seeds = defs.map((d) => d.url)
  const board = await startDashboard({ seeds, token, port: 0, intervalMs: 1000 })
  const browser = await launchBrowser()
  close = async () => {
    await browser.close()
    await board.close()
  }
  const kv = await connect({ seeds, token })
  const store = kv.store('default', { codec: 'utf8' })
  for (let i = 0; i < keys; i += 500)
    await store.putMany(Array.from({ length: Math.min(500, keys - i) }, (_, j) => ({ key: `key${i + j}`, value: 'v'.repeat(100) })))
  const polls: number[] = []
  for (let i = 0; i < 10; i++) {
    polls.push(((await (await fetch(`${board.url}/api/state`)).json()) as { pollMs: number }).pollMs)
    await new Promise((resolve) => setTimeout(resolve, 1000))
  }
  polls.sort((a, b) => a - b)
  const stateBytes = (await (await fetch(`${board.url}/api/state`)).text()).length
  const ringBytes = (await (await fetch(`${board.url}/api/ring`)).text()).length

  const page = await browser.context.newPage()
  const errors: string[] = []
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()))
  const loadStart = performance.now()
  await page.goto(board.url)
  // Expressions as text: they run in the page (this file is compiled without the DOM's types).
  const drawn = `document.querySelectorAll('#ring path[data-partition]').length === ${partitions} && document.querySelectorAll('#nodes tbody tr').length === ${nodes}`
  await page.waitForFunction(drawn, undefined, { timeout: 30_000, polling: 50 })
  const loadMs = performance.now() - loadStart

  // The browser's own accounting of the work over a quiet stretch of updates: nothing polls the page meanwhile.
  const cdp = await browser.context.newCDPSession(page)
  await cdp.send('Performance.enable')
  const metric = async () => {
    const { metrics } = await cdp.send('Performance.getMetrics')
    const of = (name: string) => (metrics.find((m) => m.name === name)?.value ?? 0) * 1000
    return { script: of('ScriptDuration'), layout: of('LayoutDuration'), style: of('RecalcStyleDuration'), task: of('TaskDuration') }
  }
  const counters = async () => {
    const [count, draw, at] = (await page.evaluate(
      '[document.body.dataset.updates, document.body.dataset.drawMs, document.body.dataset.updatedAt]',
    )) as string[]
    return { count: Number(count), drawMs: Number(draw), atMs: Number(at) }
  }
  const before = await metric()
  const first = await counters()
  await new Promise((resolve) => setTimeout(resolve, updates * 1500))
  const after = await metric()
  const last = await counters()
  const drawnUpdates = last.count - first.count
  const per = (k: keyof typeof before) => (after[k] - before[k]) / drawnUpdates

  console.log(`screenshot: ${await screenshot(page, 'dashboard-scale', `${nodes}-nodes-${partitions}-partitions`)}`)
  console.log(`partitions ${partitions}, nodes ${nodes}, keys ${keys}`)
  console.log(`JSON: /api/state ${(stateBytes / 1024).toFixed(1)} kB, /api/ring ${(ringBytes / 1024).toFixed(1)} kB (fetched once per definition version)`)
  console.log(`page load (navigation to every partition and node drawn): ${ms(loadMs)}`)
  console.log(`per update, measured in the page (fetch answered to DOM updated): ${ms((last.drawMs - first.drawMs) / drawnUpdates)}`)
  console.log(
    `per update, the browser's main thread (DevTools metrics; the fetch and JSON parse included): task ${ms(per('task'))} (script ${ms(per('script'))}, layout ${ms(per('layout'))}, style ${ms(per('style'))}) over ${drawnUpdates} updates`,
  )
  console.log(
    `the server's poll of the cluster (${nodes} nodes' /health and /metrics, a probe read each, one sibling sample): median ${polls[5]} ms, max ${polls.at(-1)} ms`,
  )
  console.log(`time between two updates (poll interval 1000 ms + the server's poll): mean ${ms((last.atMs - first.atMs) / drawnUpdates)}`)
  console.log(`console errors: ${errors.length}`)
  await kv.close(500)
} finally {
  await close()
  await Promise.all(started.map((p) => p.kill9()))
  rmSync(root, { recursive: true, force: true })
}
