import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { KvorumError } from '@kvorum/core'
import { Pool } from 'undici'
import { totalCpu } from './cpu.js'
import { Histogram } from './histogram.js'
import { paced } from './pace.js'
import { READ_SHARE, type WorkloadName, freshValue, keyOf } from './workload.js'
import { ScrambledZipfian } from './zipf.js'

/** How to get the peer when `etcd` is not on PATH. */
export const ETCD_INSTALL = 'install it: apt-get install etcd-server (Debian, etcd 3.4), or put an etcd 3.4+ binary on PATH'

/** Longest wait for a member to answer /health after it starts, ms. */
const READY_MS = 20_000
/** Bytes of each member's stderr kept. */
const STDERR_KEEP = 4096
/** Members of the peer cluster: replicated, as Kvorum's 3 nodes are. */
const MEMBERS = 3

export interface EtcdOptions {
  readonly dir: string
  readonly basePort: number
  /** `--unsafe-no-fsync` (paired with Kvorum's durability normal); else etcd's default fsync on every commit. */
  readonly noFsync: boolean
  readonly concurrency: number
}

/** What the peer did over all its slices. */
export interface PeerResult {
  readonly seconds: number
  readonly ops: number
  readonly errors: number
  readonly hist: Histogram
  readonly cpuSeconds: number | null
}

/** The `etcd` binary's version line, or null when there is none on PATH. */
export function etcdVersion(): string | null {
  const run = spawnSync('etcd', ['--version'], { encoding: 'utf8' })
  if (run.error || run.status !== 0) return null
  return /etcd Version: (\S+)/.exec(run.stdout)?.[1] ?? run.stdout.split('\n')[0] ?? 'unknown'
}

/**
 * A 3-member etcd on loopback, driven through its JSON gateway (`/v3/kv/put`,
 * `/v3/kv/range`, linearizable) at its leader: the honest replicated peer this
 * machine can run. Every process it starts, `close` stops by PID.
 */
export class EtcdPeer {
  private readonly procs: ChildProcess[] = []
  /** The end of each member's stderr (bounded), to say why one exited. */
  private readonly stderr: string[] = []
  private pool: Pool | null = null
  private readonly hist = new Histogram()
  private ops = 0
  private errors = 0
  private seconds = 0
  private cpu: number | null = 0

  private constructor(private readonly options: EtcdOptions) {}

  static async start(options: EtcdOptions): Promise<EtcdPeer> {
    const peer = new EtcdPeer(options)
    try {
      await peer.launch()
      return peer
    } catch (e) {
      await peer.close()
      throw e
    }
  }

  private url(i: number, kind: 'client' | 'peer'): string {
    return `http://127.0.0.1:${this.options.basePort + i * 2 + (kind === 'peer' ? 1 : 0)}`
  }

  private async launch(): Promise<void> {
    const names = Array.from({ length: MEMBERS }, (_, i) => `e${i + 1}`)
    const initial = names.map((n, i) => `${n}=${this.url(i, 'peer')}`).join(',')
    for (const [i, name] of names.entries()) {
      const data = join(this.options.dir, name)
      mkdirSync(data, { recursive: true })
      const args = [
        ...['--name', name, '--data-dir', data],
        ...['--listen-client-urls', this.url(i, 'client'), '--advertise-client-urls', this.url(i, 'client')],
        ...['--listen-peer-urls', this.url(i, 'peer'), '--initial-advertise-peer-urls', this.url(i, 'peer')],
        ...['--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', 'kvorum-bench'],
        ...['--log-level', 'error'],
        ...(this.options.noFsync ? ['--unsafe-no-fsync'] : []),
      ]
      const child = spawn('etcd', args, { stdio: ['ignore', 'ignore', 'pipe'] })
      this.stderr[i] = ''
      child.stderr?.on('data', (d: Buffer) => {
        this.stderr[i] = `${this.stderr[i]}${d.toString()}`.slice(-STDERR_KEEP)
      })
      this.procs.push(child)
    }
    const until = Date.now() + READY_MS
    const leader = await this.leader(until)
    this.pool = new Pool(leader, { connections: Math.min(this.options.concurrency, 128), pipelining: 1 })
  }

  /** The client URL of the leader, once every member answers. */
  private async leader(until: number): Promise<string> {
    for (;;) {
      for (const [i, p] of this.procs.entries()) {
        if (p.exitCode !== null) {
          const why = (this.stderr[i] ?? '').trim().split('\n').pop() ?? ''
          throw new KvorumError('KV_NODE_UNAVAILABLE', `etcd member e${i + 1} exited (code ${p.exitCode}) while starting: ${why.slice(0, 300)}`)
        }
      }
      try {
        const statuses = await Promise.all(
          this.procs.map(async (_, i) => {
            const res = await fetch(`${this.url(i, 'client')}/v3/maintenance/status`, { method: 'POST', body: '{}' })
            if (!res.ok) throw new Error(`status ${res.status}`)
            return (await res.json()) as { header: { member_id: string }; leader: string }
          }),
        )
        const at = statuses.findIndex((s) => s.leader !== '0' && s.header.member_id === s.leader)
        if (at >= 0) return this.url(at, 'client')
      } catch {
        // not up yet
      }
      if (Date.now() > until) throw new KvorumError('KV_NODE_UNAVAILABLE', `the etcd peer did not elect a leader within ${READY_MS} ms`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  private async call(path: string, body: object): Promise<void> {
    const res = await (this.pool as Pool).request({ method: 'POST', path, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
    const text = await res.body.text()
    if (res.statusCode !== 200) throw new Error(`etcd ${path}: ${res.statusCode} ${text.slice(0, 200)}`)
  }

  private put(key: string, value: Uint8Array): Promise<void> {
    return this.call('/v3/kv/put', { key: Buffer.from(key).toString('base64'), value: Buffer.from(value).toString('base64') })
  }

  private get(key: string): Promise<void> {
    return this.call('/v3/kv/range', { key: Buffer.from(key).toString('base64') })
  }

  /** Write the same keys and values the benchmark loads into Kvorum. */
  async load(records: number, valueBytes: number): Promise<void> {
    let next = 0
    await Promise.all(
      Array.from({ length: Math.min(64, this.options.concurrency) }, async () => {
        for (let i = next++; i < records; i = next++) await this.put(keyOf(i), freshValue(valueBytes))
      }),
    )
  }

  /** One slice of the workload's mix for `seconds`: closed loop at the benchmark's concurrency, or open loop at `rate` ops/s. */
  async slice(workload: WorkloadName, records: number, valueBytes: number, seconds: number, rate?: number): Promise<void> {
    const zipf = new ScrambledZipfian(records)
    const pids = this.procs.map((p) => p.pid as number)
    const cpu0 = totalCpu(pids)
    const started = performance.now()
    const until = started + seconds * 1000
    await paced({ concurrency: this.options.concurrency, ...(rate === undefined ? {} : { rate }) }, until, async (t0) => {
      const key = keyOf(zipf.next())
      try {
        if (Math.random() < READ_SHARE[workload]) await this.get(key)
        else await this.put(key, freshValue(valueBytes))
        this.hist.record(performance.now() - t0)
        this.ops++
      } catch {
        this.errors++
      }
    })
    this.seconds += (performance.now() - started) / 1000
    const cpu1 = totalCpu(pids)
    this.cpu = cpu0 === null || cpu1 === null || this.cpu === null ? null : this.cpu + (cpu1 - cpu0)
  }

  result(): PeerResult {
    return { seconds: this.seconds, ops: this.ops, errors: this.errors, hist: this.hist, cpuSeconds: this.cpu }
  }

  async close(): Promise<void> {
    await this.pool?.close().catch(() => undefined)
    await Promise.all(
      this.procs.map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null || p.pid === undefined) return resolve()
            const kill = setTimeout(() => p.pid !== undefined && process.kill(p.pid, 'SIGKILL'), 5000)
            p.once('exit', () => {
              clearTimeout(kill)
              resolve()
            })
            process.kill(p.pid, 'SIGTERM')
          }),
      ),
    )
  }
}
