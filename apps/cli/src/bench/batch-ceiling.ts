import { type ChildProcess, fork } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Kvorum, connect } from '@kvorum/client'
import { storeDef } from '@kvorum/core'
import { initCluster } from '../cluster-init.js'
import { nodePackageFile } from '../node-package.js'
import type { Rate } from './ceilings.js'
import { Histogram } from './histogram.js'
import { Workload, type WorkloadOptions } from './workload.js'

const require = createRequire(import.meta.url)

/** Longest wait for a no-op node to start, ms. */
const START_MS = 10_000

/** The batch ceiling's figures: a rate, and how many operations the SDK put in each node request. */
export interface BatchRate extends Rate {
  readonly itemsPerBatch: number
}

/** Fork one ceiling.js process in `mode` and wait for the port it listens on. */
export async function startCeilingProcess(args: readonly string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = fork(
    nodePackageFile(() => require.resolve('kvorum-node/ceiling')),
    args,
    { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
  )
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ceiling process ${args[0]} did not start within ${START_MS} ms`)), START_MS)
    child.once('message', (m: { port: number }) => {
      clearTimeout(timer)
      resolve(m.port)
    })
    child.once('exit', (code) => reject(new Error(`ceiling process ${args[0]} exited with ${code}`)))
  })
  return { child, url: `http://127.0.0.1:${port}` }
}

/**
 * The batch ceiling: three no-op nodes (the node's real app and codecs, store
 * batches answered without storage work) driven by the same SDK, options and
 * workload as the real cluster, in slices between the real run's. Kvorum's
 * share of it is what storage, digests and merges cost on top of this
 * transport.
 */
export class BatchCeiling {
  private constructor(
    private readonly nodes: { child: ChildProcess; url: string }[],
    private readonly dir: string,
    private readonly kv: Kvorum,
    private readonly run: Workload,
  ) {}

  static async start(opts: Omit<WorkloadOptions, 'onTick' | 'slices' | 'nodePids'> & { conflict: 'siblings' | 'lww' }): Promise<BatchCeiling> {
    const dir = mkdtempSync(join(tmpdir(), 'kvorum-batch-ceiling-'))
    const nodes: { child: ChildProcess; url: string }[] = []
    try {
      for (let i = 0; i < 3; i++) nodes.push(await startCeilingProcess(['noop-node', '--data', join(dir, `n${i}`), '--value-size', String(opts.valueBytes)]))
      await initCluster({ urls: nodes.map((n) => n.url), partitions: 256, stores: [storeDef({ name: 'bench', n: 3, r: 2, w: 2, conflict: opts.conflict })] })
      const kv = await connect({ seeds: nodes.map((n) => n.url) })
      const run = new Workload({ ...opts, nodePids: nodes.map((n) => n.child.pid as number) }, kv, 'bench')
      return new BatchCeiling(nodes, dir, kv, run)
    } catch (e) {
      for (const n of nodes) n.child.kill('SIGTERM')
      rmSync(dir, { recursive: true, force: true })
      throw e
    }
  }

  /** The workload against the no-op nodes for `seconds` more. */
  slice(seconds: number): Promise<void> {
    return this.run.slice(seconds)
  }

  /** The rate over every slice so far. */
  async rate(): Promise<BatchRate> {
    const r = await this.run.result()
    const all = new Histogram()
    let done = 0
    for (const s of Object.values(r.ops)) {
      all.merge(s.hist)
      done += s.count
    }
    const stats = this.kv.stats()
    return {
      opsPerSec: r.seconds > 0 ? done / r.seconds : 0,
      p50Ms: all.quantile(0.5),
      p99Ms: all.quantile(0.99),
      cpuUsPerOp: r.cpuSeconds === null || done === 0 ? null : (r.cpuSeconds * 1e6) / done,
      itemsPerBatch: stats.batches ? stats.batchedItems / stats.batches : 0,
    }
  }

  async close(): Promise<void> {
    await this.kv.close(1000)
    await Promise.all(
      this.nodes.map(
        (n) =>
          new Promise<void>((resolve) => {
            if (n.child.exitCode !== null || n.child.signalCode !== null) return resolve()
            n.child.once('exit', () => resolve())
            n.child.kill('SIGTERM')
          }),
      ),
    )
    rmSync(this.dir, { recursive: true, force: true })
  }
}
