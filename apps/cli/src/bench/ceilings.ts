import { type ChildProcess, fork, spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { Pool } from 'undici'
import { Histogram } from '@kvorum/client'
import { totalCpu } from './cpu.js'

const require = createRequire(import.meta.url)

/** A measured rate and its latency. */
export interface Rate {
  readonly opsPerSec: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** CPU (client and servers, all cores) per operation, µs; null without /proc. */
  readonly cpuUsPerOp: number | null
}

export interface Ceilings {
  /** One 512-byte PUT to each of 3 no-op servers per operation, answered after 2. */
  readonly fanout: Rate
  /** One no-op GET round trip. */
  readonly roundTrip: Rate
  /** Raw better-sqlite3, one row per transaction, with the run's durability. */
  readonly sqlite: { upsertsPerSec: number; readsPerSec: number }
}

async function startNoop(): Promise<{ child: ChildProcess; url: string }> {
  const child = fork(require.resolve('kvorum-node/ceiling'), ['noop-server'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no-op server did not start within 10 s')), 10_000)
    child.once('message', (m: { port: number }) => {
      clearTimeout(timer)
      resolve(m.port)
    })
    child.once('exit', (code) => reject(new Error(`no-op server exited with ${code}`)))
  })
  return { child, url: `http://127.0.0.1:${port}` }
}

/** Run `op` from `concurrency` closed-loop workers for `seconds`; returns the rate and latency. */
export async function closedLoop(concurrency: number, seconds: number, op: () => Promise<unknown>, pids: readonly number[] = []): Promise<Rate> {
  const cpu0 = totalCpu(pids)
  const hist = new Histogram()
  const until = performance.now() + seconds * 1000
  let done = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < until) {
      const t0 = performance.now()
      await op()
      hist.record(performance.now() - t0)
      done++
    }
  }))
  const cpu1 = totalCpu(pids)
  const cpuUsPerOp = cpu0 === null || cpu1 === null || done === 0 ? null : ((cpu1 - cpu0) * 1e6) / done
  return { opsPerSec: done / seconds, p50Ms: hist.quantile(0.5), p99Ms: hist.quantile(0.99), cpuUsPerOp }
}

/** Measure this machine's ceilings with the same shape as the benchmark. */
export async function measureCeilings(opts: { concurrency: number; seconds: number; valueBytes: number; durability: string }): Promise<Ceilings> {
  const servers = await Promise.all([startNoop(), startNoop(), startNoop()])
  const pools = servers.map((s) => new Pool(s.url, { connections: Math.min(opts.concurrency, 64), pipelining: 1 }))
  try {
    const body = new Uint8Array(opts.valueBytes).fill(1)
    const put = (pool: Pool) => pool.request({ method: 'POST', path: '/noop', body, headers: { 'content-type': 'application/octet-stream' } }).then((r) => r.body.dump())
    const twoOfThree = () => new Promise<void>((resolve, reject) => {
      let acks = 0
      let failures = 0
      for (const pool of pools) put(pool).then(() => ++acks === 2 && resolve(), (e) => ++failures === 2 && reject(e))
    })
    await closedLoop(opts.concurrency, 0.5, twoOfThree)
    const pids = servers.map((s) => s.child.pid as number)
    const fanout = await closedLoop(opts.concurrency, opts.seconds, twoOfThree, pids)
    const first = pools[0] as Pool
    const roundTrip = await closedLoop(opts.concurrency, opts.seconds, () => first.request({ method: 'GET', path: '/noop' }).then((r) => r.body.dump()), pids.slice(0, 1))
    return { fanout, roundTrip, sqlite: await sqliteCeiling(opts.durability, opts.seconds, opts.valueBytes) }
  } finally {
    await Promise.all(pools.map((p) => p.close()))
    for (const s of servers) s.child.kill('SIGTERM')
  }
}

function sqliteCeiling(durability: string, seconds: number, valueBytes: number): Promise<{ upsertsPerSec: number; readsPerSec: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [require.resolve('kvorum-node/ceiling'), 'sqlite', '--durability', durability, '--seconds', String(Math.max(1, seconds)), '--value-size', String(valueBytes)], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`sqlite ceiling exited with ${code}`))
      resolve(JSON.parse(out) as { upsertsPerSec: number; readsPerSec: number })
    })
  })
}
