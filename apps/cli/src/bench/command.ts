import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Kvorum, connect } from '@kvorum/client'
import { storeDef } from '@kvorum/core'
import { ACCESS_FLAGS, UsageError, accessFlags, intFlag, parse, seedList } from '../args.js'
import { initCluster } from '../cluster-init.js'
import { type LocalNode, startNodes, stopNodes } from '../local-cluster.js'
import { Progress } from '../progress.js'
import { type Ceilings, CeilingRig } from './ceilings.js'
import { MAX_OUTSTANDING } from './pace.js'
import { ETCD_INSTALL, EtcdPeer, etcdVersion } from './etcd.js'
import { type WorkloadName, type WorkloadResult, load, runWorkload } from './workload.js'
import type { BenchConfig } from './config.js'
import { printReport, reportJson } from './report.js'
import { benchTls } from './tls.js'

export const BENCH_HELP = `kvorum bench [--workload A|B|C|update] [--concurrency 64] [--duration 10] [--records 10000]
             [--value-size 512] [--durability normal|full] [--conflict siblings|lww] [--seeds URL --token T] [--json] [--no-ceilings]
             [--against etcd] [--rate OPS] [--nodes 3] [--tls]
  YCSB-style benchmark (A 50/50 read/update, B 95/5, C read only, update = read-modify-write with a merge),
  scrambled-zipfian keys, N=3 R=2 W=2. Starts its own cluster of --nodes node processes (default 3, 256
  partitions) unless --seeds is given. Measures this
  machine's ceilings in the same run and reports Kvorum's share of each: in slices between slices of the
  workload, a no-op HTTP fan-out and the batch ceiling (the same SDK, batching and workload against no-op
  nodes: the real app and codecs, store batches answered without storage work); then one no-op round
  trip and raw SQLite.
  --against etcd starts a 3-member etcd on loopback (the etcd binary on PATH; exit 2 when there is none), loads
  the same keys and runs the same mix in slices between Kvorum's, and reports both and the ratios. Durability
  pairs: Kvorum full against etcd's default fsync, Kvorum normal against etcd --unsafe-no-fsync.
  --rate OPS runs open loop: operations start on a fixed schedule of OPS a second (Kvorum's and etcd's alike),
  whatever the answers do, and each one's latency counts from its intended start, so a stall shows in the
  percentiles instead of slowing the load (no coordinated omission). At most ${MAX_OUTSTANDING} in flight; those due
  beyond that start late and carry the wait. The report adds the rate achieved, the late starts, and the
  p50 < 2 ms, p99 < 10 ms, p99.9 < 15 ms targets.
  --tls serves the bench's own cluster over HTTPS (a throwaway CA made with openssl), to measure what TLS costs.
  Exits 1 when any operation failed or an acknowledged increment was lost.`

function config(values: Record<string, string | boolean | undefined>): BenchConfig {
  const workload = (values.workload as string | undefined) ?? 'A'
  if (!['A', 'B', 'C', 'update'].includes(workload)) throw new UsageError(`--workload must be A, B, C or update, got ${workload}`)
  if (values.conflict !== undefined && values.conflict !== 'siblings' && values.conflict !== 'lww')
    throw new UsageError(`--conflict must be siblings or lww, got ${values.conflict}`)
  const durability = (values.durability as string | undefined) ?? 'normal'
  if (durability !== 'normal' && durability !== 'full') throw new UsageError(`--durability must be normal or full, got ${durability}`)
  return {
    workload: workload as WorkloadName,
    concurrency: intFlag(values.concurrency as string | undefined, 'concurrency', 1, 4096, 64),
    seconds: intFlag(values.duration as string | undefined, 'duration', 1, 3600, 10),
    records: intFlag(values.records as string | undefined, 'records', 1, 10_000_000, 10_000),
    valueBytes: intFlag(values['value-size'] as string | undefined, 'value-size', 1, 1024 * 1024, 512),
    durability,
    conflict: values.conflict === 'lww' ? 'lww' : 'siblings',
    rate: values.rate === undefined ? null : intFlag(values.rate as string, 'rate', 1, 1_000_000, 1),
    nodes: intFlag(values.nodes as string | undefined, 'nodes', 3, 64, 3),
  }
}

async function ownCluster(cfg: BenchConfig, https: boolean): Promise<{ nodes: LocalNode[]; seeds: string[]; token: string; dir: string; ca?: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'kvorum-bench-'))
  const token = 'bench'
  const tls = https ? benchTls(dir) : undefined
  let nodes: LocalNode[] | undefined
  // A random port range may be taken by another program: try a few.
  for (let attempt = 0; !nodes; attempt++) {
    const basePort = 20000 + Math.floor(Math.random() * 20000)
    try {
      nodes = await startNodes({
        nodes: cfg.nodes,
        basePort,
        dataDir: dir,
        token,
        durability: cfg.durability,
        nodeFlags: nodeFlagsFromEnv(),
        ...(tls ? { tls } : {}),
      })
    } catch (e) {
      if (attempt >= 4) throw e
    }
  }
  await initCluster({
    urls: nodes.map((n) => n.url),
    partitions: 256,
    stores: [storeDef({ name: 'bench', n: 3, r: 2, w: 2, conflict: cfg.conflict })],
    access: { token, ...(tls ? { tls: { ca: tls.ca } } : {}) },
  })
  return { nodes, seeds: nodes.map((n) => n.url), token, dir, ...(tls ? { ca: tls.ca } : {}) }
}

/** KVORUM_BENCH_NODE_FLAGS: Node.js flags for the bench's own nodes, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`. */
function nodeFlagsFromEnv(): string[] {
  return (process.env.KVORUM_BENCH_NODE_FLAGS ?? '').split(' ').filter((f) => f.length > 0)
}

export async function bench(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    workload: { type: 'string' },
    concurrency: { type: 'string' },
    duration: { type: 'string' },
    records: { type: 'string' },
    'value-size': { type: 'string' },
    durability: { type: 'string' },
    conflict: { type: 'string' },
    seeds: { type: 'string' },
    ...ACCESS_FLAGS,
    json: { type: 'boolean', default: false },
    'no-ceilings': { type: 'boolean', default: false },
    store: { type: 'string' },
    against: { type: 'string' },
    rate: { type: 'string' },
    nodes: { type: 'string' },
    tls: { type: 'boolean', default: false },
  })
  const cfg = config(values)
  if (values.against !== undefined && values.against !== 'etcd') throw new UsageError(`--against takes etcd, got ${values.against}`)
  const etcd = values.against === 'etcd' ? etcdVersion() : null
  if (values.against === 'etcd' && etcd === null) {
    console.error(`kvorum bench: --against etcd needs the etcd binary on PATH: ${ETCD_INSTALL}`)
    return 2
  }
  const say = (line: string) => (values.json ? process.stderr : process.stdout).write(`${line}\n`)
  let ceilings: Ceilings | null = null
  let rig: CeilingRig | null = null
  if (!values['no-ceilings']) {
    say(`starting the no-op servers of the ceilings (concurrency ${cfg.concurrency})...`)
    const workload = { ...cfg, rate: cfg.rate ?? undefined }
    rig = await CeilingRig.start({
      concurrency: cfg.concurrency,
      seconds: Math.min(5, cfg.seconds),
      valueBytes: cfg.valueBytes,
      durability: cfg.durability,
      workload,
    })
  }
  let own: Awaited<ReturnType<typeof ownCluster>> | null = null
  let kv: Kvorum | undefined
  let peer: EtcdPeer | null = null
  const peerDir = etcd ? mkdtempSync(join(tmpdir(), 'kvorum-bench-etcd-')) : null
  try {
    if (peerDir) {
      say(`starting a 3-member etcd ${etcd} (${cfg.durability === 'full' ? 'fsync on every commit' : '--unsafe-no-fsync'}) and loading ${cfg.records} keys...`)
      // A random port range may be taken by another program: try a few, each in a fresh directory.
      let started: EtcdPeer | null = null
      for (let attempt = 0; !started; attempt++) {
        const basePort = 30000 + Math.floor(Math.random() * 20000)
        try {
          started = await EtcdPeer.start({ dir: join(peerDir, `try-${attempt}`), basePort, noFsync: cfg.durability !== 'full', concurrency: cfg.concurrency })
        } catch (e) {
          if (attempt >= 3) throw e
        }
      }
      peer = started
      await peer.load(cfg.records, cfg.valueBytes)
    }
    if (values.tls && values.seeds) throw new UsageError("--tls is for the bench's own cluster; with --seeds, pass https:// seeds and --tls-ca")
    own = values.seeds ? null : await ownCluster(cfg, values.tls === true)
    const inflight = process.env.KVORUM_BENCH_INFLIGHT ? { batch: { maxInFlightPerNode: Number(process.env.KVORUM_BENCH_INFLIGHT) } } : {}
    kv = await connect({
      seeds: own?.seeds ?? seedList(values.seeds as string),
      ...(own ? { token: own.token, ...(own.ca ? { tls: { ca: own.ca } } : {}) } : accessFlags(values)),
      ...inflight,
    })
    const storeName = (values.store as string | undefined) ?? 'bench'
    const store = kv.store<Uint8Array>(storeName)
    if (cfg.workload !== 'update') {
      const bar = new Progress('load')
      await load(store, cfg.records, cfg.valueBytes, Math.min(cfg.concurrency, 64), (done) => bar.update(done, cfg.records, 'keys'))
      bar.done()
    }
    // The fan-out ceiling runs in slices between slices of the workload (as much time each), so both see the same machine.
    const slices = rig || peer ? Math.max(1, Math.min(10, Math.round(cfg.seconds / 2))) : 1
    const ceilingRig = rig
    const etcdPeer = peer
    const before = async () => {
      await ceilingRig?.slice(cfg.seconds / slices)
      await etcdPeer?.slice(cfg.workload, cfg.records, cfg.valueBytes, cfg.seconds / slices, cfg.rate ?? undefined)
    }
    say(
      `running workload ${cfg.workload} for ${cfg.seconds} s ${cfg.rate === null ? `at concurrency ${cfg.concurrency}` : `open loop at ${cfg.rate} ops/s`}${ceilingRig || etcdPeer ? `, in ${slices} slices after as many slices of ${[ceilingRig ? 'the fan-out and batch ceilings' : '', etcdPeer ? 'etcd' : ''].filter(Boolean).join(' and ')}` : ''}...`,
    )
    const result: WorkloadResult = await runWorkload(kv, storeName, {
      ...cfg,
      rate: cfg.rate ?? undefined,
      ...(own ? { nodePids: own.nodes.map((n) => n.child.pid as number) } : {}),
      ...(ceilingRig || etcdPeer ? { slices: { count: slices, before } } : {}),
      onTick: (done, elapsed, recent) =>
        say(
          `  ${elapsed.toFixed(0).padStart(3)} s  ${Math.round(done / elapsed)
            .toString()
            .padStart(7)} ops/s  p99 ${recent.quantile(0.99).toFixed(2)} ms`,
        ),
    })
    if (rig) {
      say('measuring the round-trip and SQLite ceilings...')
      ceilings = await rig.finish()
    }
    const json = reportJson(cfg, result, ceilings, kv.stats(), peer && etcd ? { version: etcd, ...peer.result() } : null)
    if (values.json) process.stdout.write(`${JSON.stringify(json, null, 2)}\n`)
    else printReport(json)
    return json.failed > 0 || json.lost > 0 ? 1 : 0
  } finally {
    await peer?.close()
    if (peerDir) rmSync(peerDir, { recursive: true, force: true })
    await rig?.close()
    await kv?.close(1000)
    if (own) {
      await stopNodes(own.nodes)
      rmSync(own.dir, { recursive: true, force: true })
    }
  }
}
