import { HttpTransport } from '@kvorum/client'
import { type ClusterDef, BootstrapFailedError, NodeUnavailableError, TimeoutError, UnauthorizedError } from '@kvorum/core'
import { ACCESS_FLAGS, type ClusterAccess, accessFlags, parse, seedsFlag } from './args.js'

export const STATUS_HELP = `kvorum status --seeds URL [--token T] [--json]
  Nodes and whether each answers, the cluster definition version each holds (a node with none, or an
  older one than the newest seen, is marked), partitions per node, stores, and the hint backlog kept
  for each node. Exit code 1 when a node is down or lacks the newest definition.`

/** How long status waits for each node's answer, ms. */
const STATUS_REQUEST_MS = 2000

/**
 * The definition a node holds compared with the newest any node reported:
 * `none` (new or wiped: it serves nothing until a client hands it one),
 * `older`, `current`, or `unknown` when the node did not answer.
 */
type DefinitionState = 'current' | 'older' | 'none' | 'unknown'

interface NodeStatus {
  id: string
  url: string
  zone?: string
  up: boolean
  error?: string
  partitions: number
  /** The version the node reports in /health; 0 means it holds none. */
  clusterVersion?: number
  definition: DefinitionState
  hintsFor: number
  oldestHintAgeS?: number
}

/**
 * The first definition a seed answers with. When none does, the error keeps
 * every seed's reason; when every seed that answered refused the token, it is
 * KV_UNAUTHORIZED (the token is wrong, not the cluster).
 */
export async function seedDefinition(transport: HttpTransport, seeds: string[]): Promise<ClusterDef> {
  const reasons: string[] = []
  let refused = 0
  let answered = 0
  for (const url of seeds) {
    try {
      const cluster = await transport.node({ id: 'seed', url }).getCluster({ timeoutMs: STATUS_REQUEST_MS })
      if (cluster) return cluster
      answered++
      reasons.push(`${url}: holds no cluster definition yet (run kvorum cluster init)`)
    } catch (e) {
      if (e instanceof UnauthorizedError) refused++
      if (!(e instanceof NodeUnavailableError || e instanceof TimeoutError)) answered++
      reasons.push(`${url}: ${(e as Error).message}`)
    }
  }
  if (refused > 0 && refused === answered) throw new UnauthorizedError(`the seeds refused the token: check --token or KVORUM_TOKEN (${reasons.join('; ')})`)
  throw new BootstrapFailedError(`no seed answered with a cluster definition: ${reasons.join('; ')}`)
}

/** Ask every node of the cluster how it is, and sum the hints kept for each. */
export async function collectStatus(seeds: string[], access: ClusterAccess): Promise<{ cluster: ClusterDef; newestVersion: number; nodes: NodeStatus[] }> {
  const transport = new HttpTransport(access)
  try {
    const cluster = await seedDefinition(transport, seeds)
    const counts = new Map<string, number>()
    for (const owner of cluster.assignment) counts.set(owner, (counts.get(owner) ?? 0) + 1)
    const hints = new Map<string, { count: number; oldest: number }>()
    const t = { timeoutMs: STATUS_REQUEST_MS }
    const nodes = await Promise.all(
      cluster.nodes.map(async (node): Promise<NodeStatus> => {
        const client = transport.node(node)
        const status: NodeStatus = { id: node.id, url: node.url, up: false, partitions: counts.get(node.id) ?? 0, definition: 'unknown', hintsFor: 0 }
        if (node.zone) status.zone = node.zone
        try {
          status.clusterVersion = (await client.health(t)).clusterVersion
          status.up = true
          for (const h of await client.hintTargets(t)) {
            const sum = hints.get(h.target) ?? { count: 0, oldest: Infinity }
            hints.set(h.target, { count: sum.count + h.count, oldest: Math.min(sum.oldest, h.oldestMs) })
          }
        } catch (e) {
          status.error = (e as Error).message
        }
        return status
      }),
    )
    const newestVersion = Math.max(cluster.version, ...nodes.map((n) => n.clusterVersion ?? 0))
    for (const s of nodes) {
      if (s.clusterVersion !== undefined) s.definition = s.clusterVersion === 0 ? 'none' : s.clusterVersion < newestVersion ? 'older' : 'current'
      const h = hints.get(s.id)
      if (h) {
        s.hintsFor = h.count
        s.oldestHintAgeS = Math.round((Date.now() - h.oldest) / 1000)
      }
    }
    return { cluster, newestVersion, nodes }
  } finally {
    await transport.close()
  }
}

/** The definition column: the version, and what is wrong with it. */
function definitionText(n: NodeStatus, newest: number): string {
  if (n.definition === 'none') return 'NONE (new or wiped)'
  if (n.definition === 'older') return `v${n.clusterVersion} OLDER than v${newest}`
  return n.definition === 'current' ? `v${n.clusterVersion}` : '?'
}

export async function status(argv: string[]): Promise<number> {
  const { values } = parse(argv, { seeds: { type: 'string' }, ...ACCESS_FLAGS, json: { type: 'boolean', default: false } })
  const { cluster, newestVersion, nodes } = await collectStatus(seedsFlag(values.seeds), accessFlags(values))
  if (values.json) {
    const out = { clusterVersion: cluster.version, newestClusterVersion: newestVersion, partitions: cluster.partitions, stores: cluster.stores, nodes }
    console.log(JSON.stringify(out, null, 2))
  } else {
    console.log(`cluster version ${cluster.version}, ${cluster.partitions} partitions, ${nodes.filter((n) => n.up).length}/${nodes.length} nodes up`)
    if (newestVersion > cluster.version) console.log(`a node holds a newer definition (v${newestVersion}) than the seed answered with`)
    console.log('node  up    definition           partitions  hints kept for it  url')
    for (const n of nodes) {
      const hints = n.hintsFor > 0 ? `${n.hintsFor} (oldest ${n.oldestHintAgeS}s)` : '0'
      console.log(
        `${n.id.padEnd(5)} ${(n.up ? 'up' : 'DOWN').padEnd(5)} ${definitionText(n, newestVersion).padEnd(20)} ${String(n.partitions).padEnd(11)} ${hints.padEnd(18)} ${n.url}${n.error ? `  (${n.error})` : ''}`,
      )
    }
    for (const s of cluster.stores) console.log(`store ${s.name}: n=${s.n} r=${s.r} w=${s.w} pr=${s.pr} pw=${s.pw} conflict=${s.conflict}`)
    const lacking = nodes.filter((n) => n.definition === 'none' || n.definition === 'older')
    if (lacking.length > 0)
      console.log(`${lacking.map((n) => n.id).join(', ')}: not on the newest definition; any client hands it over (kvorum repair does, then refills the data)`)
  }
  return nodes.every((n) => n.up && n.definition === 'current') ? 0 : 1
}
