import { type ChildProcess, spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { Pool } from 'undici'
import { Histogram } from './histogram.js'
import { totalCpu } from './cpu.js'
import { nodePackageFile } from '../node-package.js'
import { BatchCeiling, type BatchRate, startCeilingProcess } from './batch-ceiling.js'
import type { WorkloadOptions } from './workload.js'

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
  /**
   * The run's workload through the same SDK and batching against no-op nodes (the real app and codecs, no storage
   * work): the limit of this transport. Null for the `update` workload, whose values no-op nodes cannot hold.
   */
  readonly batch: BatchRate | null
  /** Raw better-sqlite3, one row per transaction, with the run's durability. */
  readonly sqlite: { upsertsPerSec: number; readsPerSec: number }
}

/** Operations done, their latencies and the CPU they took, over one or more stretches of time. */
export class Tally {
  done = 0
  seconds = 0
  cpu: number | null = 0
  readonly hist = new Histogram()

  rate(): Rate {
    const cpuUsPerOp = this.cpu === null || this.done === 0 ? null : (this.cpu * 1e6) / this.done
    return { opsPerSec: this.seconds > 0 ? this.done / this.seconds : 0, p50Ms: this.hist.quantile(0.5), p99Ms: this.hist.quantile(0.99), cpuUsPerOp }
  }
}

/** Run `op` from `concurrency` closed-loop workers for `seconds`, adding to `tally` (a new one by default). */
export async function closedLoop(
  concurrency: number,
  seconds: number,
  op: () => Promise<unknown>,
  pids: readonly number[] = [],
  tally = new Tally(),
): Promise<Tally> {
  const cpu0 = totalCpu(pids)
  const started = performance.now()
  const until = started + seconds * 1000
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const t0 = performance.now()
        await op()
        tally.hist.record(performance.now() - t0)
        tally.done++
      }
    }),
  )
  const cpu1 = totalCpu(pids)
  tally.seconds += (performance.now() - started) / 1000
  tally.cpu = cpu0 === null || cpu1 === null || tally.cpu === null ? null : tally.cpu + (cpu1 - cpu0)
  return tally
}

export interface CeilingOptions {
  readonly concurrency: number
  /** Seconds of the round-trip and SQLite measurements. */
  readonly seconds: number
  readonly valueBytes: number
  readonly durability: string
  /** The run's workload, for the batch ceiling. */
  readonly workload: Omit<WorkloadOptions, 'onTick' | 'slices' | 'nodePids'> & { conflict: 'siblings' | 'lww' }
}

/**
 * The no-op servers of the HTTP ceilings, kept running so that the fan-out
 * ceiling can be measured in slices between slices of the workload: this
 * machine's speed drifts by tens of percent from one minute to the next, and
 * a ratio of two figures measured minutes apart mostly measures the drift.
 */
export class CeilingRig {
  readonly fanout = new Tally()
  private constructor(
    private readonly opts: CeilingOptions,
    private readonly servers: { child: ChildProcess; url: string }[],
    private readonly pools: Pool[],
    private readonly batch: BatchCeiling | null,
  ) {}

  static async start(opts: CeilingOptions): Promise<CeilingRig> {
    const servers = await Promise.all([0, 1, 2].map(() => startCeilingProcess(['noop-server'])))
    const pools = servers.map((s) => new Pool(s.url, { connections: Math.min(opts.concurrency, 64), pipelining: 1 }))
    const batch = opts.workload.workload === 'update' ? null : await BatchCeiling.start(opts.workload)
    const rig = new CeilingRig(opts, servers, pools, batch)
    await closedLoop(opts.concurrency, 0.5, rig.twoOfThree)
    return rig
  }

  private get pids(): number[] {
    return this.servers.map((s) => s.child.pid as number)
  }

  /** One 512-byte PUT to each of the 3 servers, answered after 2. */
  private readonly twoOfThree = () =>
    new Promise<void>((resolve, reject) => {
      const body = new Uint8Array(this.opts.valueBytes).fill(1)
      let acks = 0
      let failures = 0
      for (const pool of this.pools) {
        pool
          .request({ method: 'POST', path: '/noop', body, headers: { 'content-type': 'application/octet-stream' } })
          .then((r) => r.body.dump())
          .then(
            () => ++acks === 2 && resolve(),
            (e) => ++failures === 2 && reject(e),
          )
      }
    })

  /** Measure the fan-out and batch ceilings for `seconds` more each. */
  async slice(seconds: number): Promise<void> {
    await closedLoop(this.opts.concurrency, seconds, this.twoOfThree, this.pids, this.fanout)
    await this.batch?.slice(seconds)
  }

  /** The round trip and SQLite ceilings, with the fan-out measured so far. */
  async finish(): Promise<Ceilings> {
    const first = this.pools[0] as Pool
    const roundTrip = (
      await closedLoop(
        this.opts.concurrency,
        this.opts.seconds,
        () => first.request({ method: 'GET', path: '/noop' }).then((r) => r.body.dump()),
        this.pids.slice(0, 1),
      )
    ).rate()
    return {
      fanout: this.fanout.rate(),
      batch: (await this.batch?.rate()) ?? null,
      roundTrip,
      sqlite: await sqliteCeiling(this.opts.durability, this.opts.seconds, this.opts.valueBytes),
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.pools.map((p) => p.close()))
    await this.batch?.close()
    for (const s of this.servers) s.child.kill('SIGTERM')
  }
}

function sqliteCeiling(durability: string, seconds: number, valueBytes: number): Promise<{ upsertsPerSec: number; readsPerSec: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        nodePackageFile(() => require.resolve('kvorum-node/ceiling')),
        'sqlite',
        '--durability',
        durability,
        '--seconds',
        String(Math.max(1, seconds)),
        '--value-size',
        String(valueBytes),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`sqlite ceiling exited with ${code}`))
      resolve(JSON.parse(out) as { upsertsPerSec: number; readsPerSec: number })
    })
  })
}
