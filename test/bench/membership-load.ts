/**
 * A membership change under a steady workload A, with the figures
 * MEMBERSHIP.md asks for: throughput and p50/p99/p99.9 before, during each
 * stage and after; time per stage; keys and bytes copied; stale refusals and
 * refreshes per client; how long after each version reached every node every
 * SDK held it; and, with --kill-at-step, the cost of resuming a SIGKILLed
 * driver. Nodes and the driver (the real CLI) are processes; the clients run
 * here.
 *   npx tsc -b && npx tsx --conditions=kvorum-source test/bench/membership-load.ts --from 4 --records 100000
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type { Kvorum } from '@kvorum/client'
import { Histogram } from '../../apps/cli/src/bench/histogram.js'
import { freshValue, keyOf, load } from '../../apps/cli/src/bench/workload.js'
import { ScrambledZipfian } from '../../apps/cli/src/bench/zipf.js'
import { type NodeProcess, startNode } from '../support/node-process.js'
import { startCluster } from '../support/process-cluster.js'

const { values } = parseArgs({
  options: {
    from: { type: 'string', default: '3' },
    records: { type: 'string', default: '100000' },
    'value-size': { type: 'string', default: '512' },
    clients: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '64' },
    'entries-per-step': { type: 'string', default: '16' },
    before: { type: 'string', default: '20' },
    after: { type: 'string', default: '20' },
    'kill-at-step': { type: 'string' },
    json: { type: 'boolean', default: false },
  },
})
const from = Number(values.from)
const records = Number(values.records)
const valueBytes = Number(values['value-size'])
const clientCount = Number(values.clients)
const concurrency = Number(values.concurrency)
const killAtStep = values['kill-at-step'] === undefined ? null : Number(values['kill-at-step'])
const CLI = fileURLToPath(new URL('../../apps/cli/dist/main.js', import.meta.url))
const log = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`)

/** The phase the cluster is in, as the driver last reported it. */
let phase = 'before'
interface Second {
  phase: string
  hist: Histogram
  errors: number
}
const seconds: Second[] = []
let current: Second = { phase, hist: new Histogram(), errors: 0 }
const errorCodes: Record<string, number> = {}

/** Stage changes the driver printed: when, and for which version. */
const stages: { at: number; stage: string; step: number; version: number }[] = []
const installedAt = new Map<number, number>()
/** Per client, each version it switched to and when. */
const seen: { at: number; version: number }[][] = []
/** Per step, the keys and bytes its copy reported last. */
const copiedPerStep = new Map<number, { keys: number; bytes: number }>()

function watchDriver(child: ChildProcess, onLine: (line: string) => void): Promise<number | null> {
  let buffer = ''
  child.stderr?.on('data', (d: Buffer) => {
    buffer += d.toString()
    for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
      const line = buffer.slice(0, nl)
      buffer = buffer.slice(nl + 1)
      onLine(line)
    }
  })
  child.stdout?.on('data', (d: Buffer) => log(`driver: ${d.toString().trim()}`))
  return new Promise((resolve) => child.on('exit', (code) => resolve(code)))
}

const root = mkdtempSync(join(tmpdir(), 'kvorum-membership-load-'))
const cluster = await startCluster({ nodes: from, partitions: 256, stores: [{ name: 'bench', n: 3, r: 2, w: 2 }] })
let joiner: NodeProcess | undefined
const clients: Kvorum[] = []
try {
  joiner = await startNode({ data: join(root, `n${from + 1}`), id: `n${from + 1}`, token: cluster.token })
  for (let i = 0; i < clientCount; i++) clients.push(await cluster.connect({ pollIntervalMs: 10_000 }))
  const loader = clients[0] as Kvorum
  log(`loading ${records} keys of ${valueBytes} bytes into ${from} nodes`)
  await load(loader.store('bench'), records, valueBytes, 64, () => undefined)

  let running = true
  const zipf = new ScrambledZipfian(records)
  const worker = async (kv: Kvorum) => {
    const store = kv.store('bench')
    const contexts = new Map<string, string>()
    while (running) {
      const key = keyOf(zipf.next())
      const t0 = performance.now()
      try {
        if (Math.random() < 0.5) contexts.set(key, (await store.get(key)).context)
        else {
          const context = contexts.get(key)
          contexts.set(key, (await store.put(key, freshValue(valueBytes), context === undefined ? {} : { context })).context)
        }
        current.hist.record(performance.now() - t0)
      } catch (e) {
        current.errors++
        const code = (e as { code?: string }).code ?? 'ERROR'
        errorCodes[code] = (errorCodes[code] ?? 0) + 1
      }
    }
  }
  const workers = clients.flatMap((kv) => Array.from({ length: concurrency / clientCount }, () => worker(kv)))
  const ticker = setInterval(() => {
    seconds.push(current)
    current = { phase, hist: new Histogram(), errors: 0 }
  }, 1000)
  // Each SDK's version, sampled every 20 ms: when did each learn each version?
  for (const _ of clients) seen.push([])
  const sampler = setInterval(() => {
    const now = performance.now()
    for (const [i, kv] of clients.entries()) {
      const list = seen[i] as { at: number; version: number }[]
      if (list[list.length - 1]?.version !== kv.cluster.version) list.push({ at: now, version: kv.cluster.version })
    }
  }, 20)

  await new Promise((r) => setTimeout(r, Number(values.before) * 1000))
  const seed = cluster.seeds[0] as string
  const args = [
    'cluster',
    'rebalance',
    '--add',
    joiner.url,
    '--seeds',
    seed,
    '--token',
    cluster.token,
    '--entries-per-step',
    values['entries-per-step'] as string,
  ]
  const changeStarted = performance.now()
  let killed: { at: number; step: number; copiedBefore: number } | null = null
  let resumed: { at: number; firstCopyDoneAt?: number; keysCopied?: number } | null = null
  const onLine = (line: string) => {
    if (/^done \[/.test(line)) {
      phase = 'after'
      return
    }
    const m = /^step (\d+)\/(\d+) (\S+) \[(\w+)\] v(\d+): (\d+) keys \/ (\d+) bytes/.exec(line)
    if (!m) {
      log(`driver: ${line}`)
      return
    }
    const [, step, , stage, ph, version, keys, bytes] = m
    const at = performance.now()
    phase = stage === 'done' ? 'after' : (stage as string)
    const last = stages[stages.length - 1]
    if (!last || last.stage !== stage || last.step !== Number(step)) {
      stages.push({ at, stage: stage as string, step: Number(step), version: Number(version) })
      log(line)
    }
    if (ph === 'drain' && !installedAt.has(Number(version))) installedAt.set(Number(version), at)
    if (ph === 'copy') {
      copiedPerStep.set(Number(step), { keys: Number(keys), bytes: Number(bytes) })
    }
    // The resumed driver's copy of the killed step is done when that step reads from the new replicas.
    if (resumed && killed && resumed.firstCopyDoneAt === undefined && stage === 'read-new' && Number(step) === killed.step) {
      resumed.firstCopyDoneAt = at
      resumed.keysCopied = copiedPerStep.get(killed.step)?.keys ?? 0
    }
  }
  for (let attempt = 0; attempt < 3; attempt++) {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    if (killAtStep !== null && !killed) {
      // SIGKILL the driver in the middle of the copy of step `killAtStep`.
      const poll = setInterval(() => {
        const last = stages[stages.length - 1]
        const copied = copiedPerStep.get(killAtStep)?.keys ?? 0
        if (last && last.step === killAtStep && last.stage === 'write-both' && copied > 0) {
          clearInterval(poll)
          killed = { at: performance.now(), step: killAtStep, copiedBefore: copied }
          log(`SIGKILL driver pid ${child.pid} during the copy of step ${killAtStep} (${copied} keys copied)`)
          child.kill('SIGKILL')
        }
      }, 50)
      child.on('exit', () => clearInterval(poll))
    }
    const code = await watchDriver(child, onLine)
    if (code === 0) break
    if (!killed) throw new Error(`the driver exited with ${code}`)
    resumed = { at: performance.now() }
    log('resuming: the same command again')
  }
  const changeSeconds = (performance.now() - changeStarted) / 1000
  phase = 'after'
  await new Promise((r) => setTimeout(r, Number(values.after) * 1000))
  running = false
  clearInterval(ticker)
  clearInterval(sampler)
  await Promise.all(workers)

  // Figures per phase: before, each stage (all steps together), after.
  const order = ['before', 'write-both', 'read-new', 'use-new', 'cleanup', 'after']
  const byPhase = new Map<string, { hist: Histogram; seconds: number; errors: number }>()
  for (const s of seconds) {
    const p = byPhase.get(s.phase) ?? { hist: new Histogram(), seconds: 0, errors: 0 }
    p.hist.merge(s.hist)
    p.seconds++
    p.errors += s.errors
    byPhase.set(s.phase, p)
  }
  const rows = order
    .filter((p) => byPhase.has(p))
    .map((p) => {
      const x = byPhase.get(p) as { hist: Histogram; seconds: number; errors: number }
      return {
        phase: p,
        seconds: x.seconds,
        opsPerSec: Math.round(x.hist.count / x.seconds),
        p50Ms: x.hist.quantile(0.5),
        p99Ms: x.hist.quantile(0.99),
        p999Ms: x.hist.quantile(0.999),
        errors: x.errors,
      }
    })
  // Time in each stage, summed over the steps.
  const stageTime: Record<string, number> = {}
  for (const [i, s] of stages.entries()) {
    const end = stages[i + 1]?.at ?? changeStarted + changeSeconds * 1000
    stageTime[s.stage] = (stageTime[s.stage] ?? 0) + (end - s.at) / 1000
  }
  // How long after a version was on every node every SDK held it (negative: before).
  const lags = [...installedAt].map(([version, at]) => {
    const held = seen.map((list) => list.find((x) => x.version >= version)?.at)
    const all = held.every((t) => t !== undefined)
    return { version, allClientsAfterMs: all ? Math.round(Math.max(...(held as number[])) - at) : null }
  })
  // Time in write-both (with its copy) per step.
  const writeBoth = stages.map((s, i) => ({ s, end: stages[i + 1]?.at })).filter(({ s }) => s.stage === 'write-both')
  const copyPerStep = writeBoth.map(({ s, end }) => ({ step: s.step, seconds: end ? (end - s.at) / 1000 : null, ...copiedPerStep.get(s.step) }))
  const perClient = clients.map((kv, i) => {
    const s = kv.stats()
    return { client: i + 1, refreshes: s.clusterRefreshes, staleRefusals: s.staleRefusals, version: kv.cluster.version }
  })
  const out = {
    change: `${from}→${from + 1}`,
    records,
    valueBytes,
    concurrency,
    clients: clientCount,
    changeSeconds,
    steps: stages.filter((s) => s.stage === 'write-both').length,
    rows,
    stageSeconds: stageTime,
    copyPerStep,
    versionLag: lags,
    perClient,
    errorCodes,
    killed,
    resumed: resumed && {
      restartToCopyDoneS: (resumed as { at: number; firstCopyDoneAt?: number }).firstCopyDoneAt
        ? (((resumed as { firstCopyDoneAt: number }).firstCopyDoneAt - (resumed as { at: number }).at) / 1000).toFixed(1)
        : null,
      keysCopiedAgain: (resumed as { keysCopied?: number }).keysCopied ?? null,
    },
  }
  if (values.json) console.log(JSON.stringify(out, null, 2))
  else {
    console.log(`${out.change}: ${records} keys of ${valueBytes} B, workload A at concurrency ${concurrency} over ${clientCount} SDK clients`)
    console.log(`change took ${changeSeconds.toFixed(1)} s in ${out.steps} step(s)`)
    console.log('| phase | seconds | ops/s | p50 ms | p99 ms | p99.9 ms | errors |')
    console.log('|---|---|---|---|---|---|---|')
    for (const r of rows)
      console.log(`| ${r.phase} | ${r.seconds} | ${r.opsPerSec} | ${r.p50Ms.toFixed(1)} | ${r.p99Ms.toFixed(1)} | ${r.p999Ms.toFixed(1)} | ${r.errors} |`)
    console.log(
      `write-both with its copy, per step: ${copyPerStep.map((c) => `step ${c.step} ${c.seconds?.toFixed(1)} s, ${c.keys ?? 0} keys, ${((c.bytes ?? 0) / 1e6).toFixed(1)} MB`).join('; ')}`,
    )
    console.log(
      `time per stage (all steps): ${Object.entries(stageTime)
        .map(([k, v]) => `${k} ${v.toFixed(1)} s`)
        .join(', ')}`,
    )
    console.log(`SDKs holding each version, ms after it was on every node: ${lags.map((l) => `v${l.version} ${l.allClientsAfterMs ?? 'never'}`).join(', ')}`)
    console.log(`per client: ${perClient.map((c) => `#${c.client} ${c.refreshes} refreshes, ${c.staleRefusals} stale refusals`).join('; ')}`)
    console.log(`errors: ${JSON.stringify(errorCodes)}`)
    if (killed) console.log(`killed: ${JSON.stringify(killed)}; resumed: ${JSON.stringify(out.resumed)}`)
  }
} finally {
  for (const kv of clients) await kv.close().catch(() => undefined)
  await joiner?.stop()
  await cluster.close()
  rmSync(root, { recursive: true, force: true })
}
