import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { type Kvorum, connect } from '@kvorum/client'
import { storeDef } from '@kvorum/core'
import { intFlag, parse } from './args.js'
import { initCluster } from './cluster-init.js'
import { startNodes, stopNodes } from './local-cluster.js'

export const DEV_HELP = `kvorum dev [--nodes 3] [--base-port 7070] [--data ./data] [--durability normal|full]
  Start a local cluster on 127.0.0.1 with a store "default" (n=3, r=2, w=2).
  Data and the cluster token live under --data; Ctrl-C stops every node cleanly.`

/** The token of a local cluster: kept in the data directory so restarts keep it. */
function devToken(dataDir: string): string {
  const file = join(dataDir, 'token')
  if (existsSync(file)) return readFileSync(file, 'utf8').trim()
  const token = randomBytes(16).toString('hex')
  mkdirSync(dataDir, { recursive: true })
  writeFileSync(file, `${token}\n`, { mode: 0o600 })
  return token
}

export async function dev(argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    nodes: { type: 'string' },
    'base-port': { type: 'string' },
    data: { type: 'string', default: './data' },
    durability: { type: 'string', default: 'normal' },
  })
  const count = intFlag(values.nodes, 'nodes', 1, 16, 3)
  const basePort = intFlag(values['base-port'], 'base-port', 1024, 65000, 7070)
  const dataDir = values.data as string
  const durability = values.durability === 'full' ? 'full' : 'normal'
  const token = devToken(dataDir)
  console.log(`starting ${count} nodes on 127.0.0.1:${basePort}..${basePort + count - 1} (data in ${dataDir})`)
  const nodes = await startNodes({ nodes: count, basePort, dataDir, token, durability })
  let stopping = false
  let kv: Kvorum | undefined
  const stop = async () => {
    if (stopping) return
    stopping = true
    console.log('\nstopping nodes...')
    await kv?.close(500)
    await stopNodes(nodes)
    console.log('stopped')
    process.exit(0)
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  const n = Math.min(3, count)
  const stores = [storeDef({ name: 'default', n, r: Math.min(2, n), w: Math.min(2, n) })]
  await initCluster({ urls: nodes.map((x) => x.url), partitions: 256, stores, token })
  // The dev cluster delivers hints itself, as an application process would.
  kv = await connect({ seeds: nodes.map((x) => x.url), token })
  kv.startHandoff()
  for (const node of nodes) void node.exited.then((code) => !stopping && console.error(`node ${node.id} exited (code ${code})`))
  const seed = nodes[0]?.url as string
  console.log(`cluster ready: ${nodes.map((x) => `${x.id} ${x.url}`).join(', ')}`)
  console.log(`seed:  ${seed}`)
  console.log(`token: ${token}`)
  console.log(`try:   npx kvorum put default hello world --seeds ${seed} --token ${token}`)
  console.log('Ctrl-C stops the cluster.')
}
