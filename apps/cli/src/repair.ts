import { HttpTransport, type Kvorum, type RepairReport, connect } from '@kvorum/client'
import type { NodeDef } from '@kvorum/core'
import { ACCESS_FLAGS, accessFlags, intFlag, parse, seedsFlag } from './args.js'
import { Progress } from './progress.js'

export const REPAIR_HELP = `kvorum repair --seeds URL [--store S] [--partition P] [--max-keys-per-second N] [--token T] [--json]
kvorum repair --daemon --seeds URL [--pause-s 60] [--token T]
  One Merkle anti-entropy pass with a progress bar and a summary; --daemon also delivers hints
  and repeats the pass with a pause in between, until Ctrl-C. A node with no cluster definition
  (new or wiped) is handed one first and refilled by the pass. The summary names every replica
  the pass could not compare (down, or still without a definition) and the partitions it skipped
  for them; then the exit code is 1.`

/** How long a repair waits for each node's /health before and after the pass, ms. */
const PROBE_MS = 2000

/** One node's answer to /health: the definition version it holds (0: none), or why it did not answer. */
type Probe = { version: number } | { error: string }

/** What the pass could do with one replica, and whether that leaves it unrepaired. */
interface ReplicaOutcome {
  readonly id: string
  readonly url: string
  readonly skipped: boolean
  readonly note: string
}

async function probe(transport: HttpTransport, nodes: readonly NodeDef[]): Promise<Map<string, Probe>> {
  const answers = await Promise.all(
    nodes.map(async (n): Promise<[string, Probe]> => {
      try {
        return [n.id, { version: (await transport.node(n).health({ timeoutMs: PROBE_MS })).clusterVersion }]
      } catch (e) {
        return [n.id, { error: (e as Error).message }]
      }
    }),
  )
  return new Map(answers)
}

/** Compare what each replica held before the pass with what it holds after. */
function outcomes(nodes: readonly NodeDef[], before: Map<string, Probe>, after: Map<string, Probe>): ReplicaOutcome[] {
  return nodes.map((n) => {
    const pre = before.get(n.id)
    const post = after.get(n.id)
    const base = { id: n.id, url: n.url }
    if (!pre || !post) return { ...base, skipped: true, note: 'not probed' }
    if ('error' in pre) return { ...base, skipped: true, note: `not reached: ${pre.error}` }
    if ('error' in post) return { ...base, skipped: true, note: `not reached after the pass: ${post.error}` }
    if (post.version === 0) return { ...base, skipped: true, note: 'holds no cluster definition (it refused the one this client handed it)' }
    if (pre.version === 0)
      return { ...base, skipped: false, note: `held no cluster definition (new or wiped): handed version ${post.version}, refilled by this pass` }
    return { ...base, skipped: false, note: 'compared' }
  })
}

function summary(r: RepairReport): string {
  return (
    `${r.partitionsDone}/${r.partitionsTotal} partitions (${r.partitionsDiffering} differed, ${r.partitionsSkipped} skipped: not every replica answered), ` +
    `${r.keysCompared} keys compared, ${r.keysRepaired} repaired (${r.replicaWrites} replica writes), ` +
    `${r.tombstonesReaped} tombstones reaped, ${(r.bytesExchanged / 1024).toFixed(1)} KiB exchanged in ${(r.durationMs / 1000).toFixed(1)} s`
  )
}

/** The replica lines after the summary: every replica that was not simply compared. */
function replicaLines(replicas: readonly ReplicaOutcome[]): string[] {
  const lines = replicas.filter((r) => r.note !== 'compared').map((r) => `${r.id} ${r.url}: ${r.note}`)
  const skipped = replicas.filter((r) => r.skipped).length
  if (skipped > 0)
    lines.push(`${skipped} of ${replicas.length} replicas skipped: their partitions were repaired among the others; run kvorum repair again once they answer`)
  return lines
}

type PassOptions = Parameters<Kvorum['repair']>[0]

/** One pass with the replicas probed around it; `skipped` is true when it left any replica or partition out. */
async function pass(
  kv: Kvorum,
  transport: HttpTransport,
  options: PassOptions,
): Promise<{ report: RepairReport; replicas: ReplicaOutcome[]; skipped: boolean }> {
  const nodes = kv.cluster.nodes
  const before = await probe(transport, nodes)
  const report = await kv.repair(options)
  const replicas = outcomes(nodes, before, await probe(transport, kv.cluster.nodes))
  return { report, replicas, skipped: report.partitionsSkipped > 0 || replicas.some((r) => r.skipped) }
}

export async function repair(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    seeds: { type: 'string' },
    ...ACCESS_FLAGS,
    store: { type: 'string' },
    partition: { type: 'string' },
    'max-keys-per-second': { type: 'string' },
    daemon: { type: 'boolean', default: false },
    'pause-s': { type: 'string' },
    json: { type: 'boolean', default: false },
  })
  const access = accessFlags(values)
  const kv = await connect({ seeds: seedsFlag(values.seeds), ...access })
  const transport = new HttpTransport(access)
  const partitions = values.partition === undefined ? undefined : [intFlag(values.partition, 'partition', 0, kv.cluster.partitions - 1, 0)]
  const options = {
    ...(values.store ? { store: values.store } : {}),
    ...(partitions ? { partitions } : {}),
    maxKeysPerSecond: intFlag(values['max-keys-per-second'], 'max-keys-per-second', 1, 1_000_000, 10_000),
    // A partition is skipped unless every replica answered, so a replica that is down is never passed over silently.
    requireReplicasExcept: new Set<string>(),
  }
  if (values.store) kv.store(values.store)
  try {
    if (!values.daemon) {
      const bar = new Progress('repair')
      const { report, replicas, skipped } = await pass(kv, transport, {
        ...options,
        onProgress: (r) => bar.update(r.partitionsDone, r.partitionsTotal, `${r.keysRepaired} keys repaired, ${(r.bytesExchanged / 1024).toFixed(1)} KiB`),
      })
      bar.done()
      const replicasSkipped = replicas.filter((r) => r.skipped).length
      if (values.json) console.log(JSON.stringify({ ...report, replicasSkipped, replicas }))
      else for (const line of [summary(report), ...replicaLines(replicas)]) console.log(line)
      return skipped ? 1 : 0
    }
    const pauseMs = intFlag(values['pause-s'], 'pause-s', 0, 86_400, 60) * 1000
    kv.startHandoff()
    let stop = false
    const halt = () => {
      stop = true
    }
    process.on('SIGINT', halt)
    process.on('SIGTERM', halt)
    console.log(`repair daemon: delivering hints continuously, a repair pass every ${pauseMs / 1000} s; Ctrl-C stops`)
    while (!stop) {
      const { report, replicas } = await pass(kv, transport, options)
      console.log(`${new Date().toISOString()} ${summary(report)}`)
      for (const line of replicaLines(replicas)) console.log(`  ${line}`)
      for (let waited = 0; waited < pauseMs && !stop; waited += 200) await new Promise((r) => setTimeout(r, 200))
    }
    return 0
  } finally {
    await transport.close()
    await kv.close()
  }
}
