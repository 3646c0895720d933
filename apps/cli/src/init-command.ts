import { ACCESS_FLAGS, UsageError, accessFlags, intFlag, parse, seedList } from './args.js'
import { initCluster, parseStore } from './cluster-init.js'

export const INIT_HELP = `kvorum cluster init --nodes HOST:PORT,... [--zones z1,z2,...] [--partitions 256] --store name:n=3,r=2,w=2 [--store ...] [--token T]
  Write the first cluster definition to running nodes (each must answer /health).
  --nodes     the nodes, host:port (http:// assumed) or URLs, in order
  --zones     one zone per node, in the same order; placement spreads replicas across zones
  --store     a store and its fields: n, r, w, pr, pw, conflict (siblings|lww), maxValueBytes,
              maxSiblings, tombstoneGraceMs; default default:n=3,r=2,w=2
  --token     the cluster token; default $KVORUM_TOKEN
  --admin-token, --admin-token-file, --token-file, --tls-ca, --tls-cert, --tls-key: as every command (kvorum --help)`

/** `kvorum cluster init`. */
export async function initCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    nodes: { type: 'string' },
    zones: { type: 'string' },
    partitions: { type: 'string' },
    store: { type: 'string', multiple: true },
    ...ACCESS_FLAGS,
  })
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`)
  if (!values.nodes) throw new UsageError('--nodes host:port,... is required')
  const urls = seedList(values.nodes, 'nodes')
  const zones = values.zones?.split(',').map((s) => s.trim())
  if (zones && zones.length !== urls.length) throw new UsageError(`--zones must name one zone per node (${urls.length}), got ${zones.length}`)
  const stores = (values.store ?? ['default:n=3,r=2,w=2']).map(parseStore)
  const def = await initCluster({
    urls,
    partitions: intFlag(values.partitions, 'partitions', 1, 65536, 256),
    stores,
    ...(zones ? { zones } : {}),
    access: accessFlags(values),
  })
  console.log(`cluster version ${def.version} installed on ${def.nodes.length} nodes: ${def.nodes.map((n) => n.id).join(', ')}`)
  return 0
}
