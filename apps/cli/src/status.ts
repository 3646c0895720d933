import { HttpTransport } from '@kvorum/client'
import { type ClusterDef, BootstrapFailedError } from '@kvorum/core'
import { parse, seedsFlag, tokenFlag } from './args.js'

export const STATUS_HELP = `kvorum status --seeds URL [--token T] [--json]
  Nodes and whether each answers, partitions per node, stores, and the hint backlog kept for each node.`

interface NodeStatus {
  id: string
  url: string
  zone?: string
  up: boolean
  error?: string
  partitions: number
  clusterVersion?: number
  hintsFor: number
  oldestHintAgeS?: number
}

/** Ask every node of the cluster how it is, and sum the hints kept for each. */
export async function collectStatus(seeds: string[], token: { token?: string }): Promise<{ cluster: ClusterDef; nodes: NodeStatus[] }> {
  const transport = new HttpTransport(token)
  try {
    let cluster: ClusterDef | null = null
    for (const url of seeds) {
      cluster = await transport
        .node({ id: 'seed', url })
        .getCluster({ timeoutMs: 2000 })
        .catch(() => null)
      if (cluster) break
    }
    if (!cluster) throw new BootstrapFailedError(`no seed (${seeds.join(', ')}) answered with a cluster definition`)
    const counts = new Map<string, number>()
    for (const owner of cluster.assignment) counts.set(owner, (counts.get(owner) ?? 0) + 1)
    const hints = new Map<string, { count: number; oldest: number }>()
    const nodes: NodeStatus[] = []
    for (const node of cluster.nodes) {
      const client = transport.node(node)
      const status: NodeStatus = { id: node.id, url: node.url, up: false, partitions: counts.get(node.id) ?? 0, hintsFor: 0 }
      if (node.zone) status.zone = node.zone
      try {
        status.clusterVersion = (await client.health({ timeoutMs: 2000 })).clusterVersion
        status.up = true
        for (const t of await client.hintTargets({ timeoutMs: 2000 })) {
          const h = hints.get(t.target) ?? { count: 0, oldest: Infinity }
          hints.set(t.target, { count: h.count + t.count, oldest: Math.min(h.oldest, t.oldestMs) })
        }
      } catch (e) {
        status.error = (e as Error).message
      }
      nodes.push(status)
    }
    for (const s of nodes) {
      const h = hints.get(s.id)
      if (h) {
        s.hintsFor = h.count
        s.oldestHintAgeS = Math.round((Date.now() - h.oldest) / 1000)
      }
    }
    return { cluster, nodes }
  } finally {
    await transport.close()
  }
}

export async function status(argv: string[]): Promise<number> {
  const { values } = parse(argv, { seeds: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean', default: false } })
  const { cluster, nodes } = await collectStatus(seedsFlag(values.seeds), tokenFlag(values.token))
  if (values.json) {
    console.log(JSON.stringify({ clusterVersion: cluster.version, partitions: cluster.partitions, stores: cluster.stores, nodes }, null, 2))
  } else {
    console.log(`cluster version ${cluster.version}, ${cluster.partitions} partitions, ${nodes.filter((n) => n.up).length}/${nodes.length} nodes up`)
    console.log('node  up    partitions  hints kept for it  url')
    for (const n of nodes) {
      const hints = n.hintsFor > 0 ? `${n.hintsFor} (oldest ${n.oldestHintAgeS}s)` : '0'
      console.log(
        `${n.id.padEnd(5)} ${(n.up ? 'up' : 'DOWN').padEnd(5)} ${String(n.partitions).padEnd(11)} ${hints.padEnd(18)} ${n.url}${n.error ? `  (${n.error})` : ''}`,
      )
    }
    for (const s of cluster.stores) console.log(`store ${s.name}: n=${s.n} r=${s.r} w=${s.w} pr=${s.pr} pw=${s.pw} conflict=${s.conflict}`)
  }
  return nodes.every((n) => n.up) ? 0 : 1
}
