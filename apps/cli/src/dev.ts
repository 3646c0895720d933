import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { HttpTransport, type Kvorum, connect } from '@kvorum/client'
import { type ClusterDef, ClusterExistsError, storeDef } from '@kvorum/core'
import { UsageError, intFlag, parse } from './args.js'
import { initCluster } from './cluster-init.js'
import { type LocalNode, nodeMainPath, startNodes, stopNodes } from './local-cluster.js'
import { LogFollower } from './log-follow.js'

export const DEV_HELP = `kvorum dev [--nodes 3] [--base-port 7070] [--data ./data] [--durability normal|full] [--logs]
  Start a local cluster on 127.0.0.1 with a store "default" (n=3, r=2, w=2), or restart the one
  kept in --data. Data, the cluster token and each node's log (DATA/n1/node.log, ...) live under
  --data; --logs also prints the nodes' logs here, each line prefixed with its node id. Every port
  is checked free first; if anything fails, every node started is stopped. Ctrl-C stops them all.`

/** The file of a local cluster's token, in its data directory so restarts keep it; the nodes read it with --token-file. */
const tokenFileOf = (dataDir: string) => join(dataDir, 'token')

/** The token of a local cluster, made on the first run. */
function devToken(dataDir: string): string {
  const file = tokenFileOf(dataDir)
  if (existsSync(file)) return readFileSync(file, 'utf8').trim()
  const token = randomBytes(16).toString('hex')
  mkdirSync(dataDir, { recursive: true })
  writeFileSync(file, `${token}\n`, { mode: 0o600 })
  return token
}

/**
 * The definition the nodes already hold (a restart of the same data), or a
 * first one installed now. Held definitions must name the nodes started, at
 * their URLs: data made with other --nodes or --base-port is refused.
 */
async function clusterFor(nodes: readonly LocalNode[], dataDir: string, token: string): Promise<{ def: ClusterDef; reused: boolean }> {
  const transport = new HttpTransport({ token })
  try {
    for (const node of nodes) {
      const held = await transport.node(node).getCluster({ timeoutMs: 3000 })
      if (!held) continue
      const strangers = nodes.filter((n) => !held.nodes.some((d) => d.id === n.id && d.url === n.url))
      if (strangers.length > 0) {
        const shape = held.nodes.map((d) => `${d.id} ${d.url}`).join(', ')
        throw new ClusterExistsError(
          node.url,
          held.version,
          `${dataDir} holds a cluster of ${shape}: run kvorum dev with the --nodes and --base-port it was made with, or pass a fresh --data`,
        )
      }
      return { def: held, reused: true }
    }
  } finally {
    await transport.close()
  }
  const n = Math.min(3, nodes.length)
  const stores = [storeDef({ name: 'default', n, r: Math.min(2, n), w: Math.min(2, n) })]
  return { def: await initCluster({ urls: nodes.map((x) => x.url), partitions: 256, stores, access: { token } }), reused: false }
}

export async function dev(argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    nodes: { type: 'string' },
    'base-port': { type: 'string' },
    data: { type: 'string', default: './data' },
    durability: { type: 'string', default: 'normal' },
    logs: { type: 'boolean', default: false },
  })
  const count = intFlag(values.nodes, 'nodes', 1, 16, 3)
  const basePort = intFlag(values['base-port'], 'base-port', 1024, 65000, 7070)
  const dataDir = resolve(values.data as string)
  if (values.durability !== 'normal' && values.durability !== 'full') throw new UsageError(`--durability must be normal or full, got ${values.durability}`)
  const durability = values.durability
  // Before anything is written: without the kvorum-node package there is nothing to start.
  nodeMainPath()
  const token = devToken(dataDir)
  // Known from each spawn on, so a signal or a failure at any later point stops every one.
  const started: LocalNode[] = []
  let kv: Kvorum | undefined
  let follower: LogFollower | undefined
  let stopping = false
  let signalled: Promise<void> | undefined
  const shutdown = async () => {
    stopping = true
    console.log('\nstopping nodes...')
    await kv?.close(500)
    await stopNodes(started)
    follower?.stop()
    console.log('stopped')
    process.exit(0)
  }
  const stop = () => {
    signalled ??= shutdown()
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  console.log(`starting ${count} nodes on 127.0.0.1:${basePort}..${basePort + count - 1} (data and node logs in ${dataDir})`)
  try {
    const onSpawn = (n: LocalNode) => {
      started.push(n)
      console.log(`  ${n.id} ${n.url}: pid ${n.pid}, log ${n.logPath}`)
    }
    const nodes = await startNodes({ nodes: count, basePort, dataDir, tokenFile: tokenFileOf(dataDir), durability, onSpawn })
    if (values.logs)
      follower = new LogFollower(
        nodes.map((n) => ({ prefix: n.id, path: n.logPath, offset: n.logOffset })),
        (line) => console.log(line),
      )
    const { def, reused } = await clusterFor(nodes, dataDir, token)
    if (reused) console.log(`restarted the cluster kept in ${dataDir} (cluster version ${def.version})`)
    // The dev cluster delivers hints itself, as an application process would.
    kv = await connect({ seeds: nodes.map((x) => x.url), token })
    kv.startHandoff()
    // Also hands the definition to a node whose data was wiped since the last run.
    for (const v of await kv.clusterVersions())
      if (v.version === null)
        console.log(`  ${v.id}: ${v.error ? `did not answer (${v.error})` : 'holds no cluster definition (it refused the one handed to it)'}`)
  } catch (e) {
    // Stopped by a signal while starting: that shutdown ends the process, and this is no failure.
    if (signalled) return signalled
    stopping = true
    await kv?.close(500)
    await stopNodes(started)
    follower?.stop()
    if (started.length > 0) console.error(`stopped the ${started.length} nodes this run started (pids ${started.map((n) => n.pid).join(', ')})`)
    throw e
  }
  for (const node of started) void node.exited.then((code) => !stopping && console.error(`node ${node.id} exited (code ${code}); its log: ${node.logPath}`))
  const seed = started[0]?.url as string
  console.log(`cluster ready: ${started.map((x) => `${x.id} ${x.url}`).join(', ')}`)
  console.log(`seed:  ${seed}`)
  console.log(`token: ${token}`)
  console.log(`try:   npx kvorum put default hello world --seeds ${seed} --token-file ${tokenFileOf(dataDir)}`)
  console.log('Ctrl-C stops the cluster.')
}
