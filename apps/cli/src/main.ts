#!/usr/bin/env node
import { KvorumError } from '@kvorum/core'
import { UsageError, intFlag, parse, tokenFlag } from './args.js'
import { initCluster, parseStore } from './cluster-init.js'
import { DATA_HELP, dataCommand } from './data-commands.js'
import { DEV_HELP, dev } from './dev.js'
import { MEMBERSHIP_HELP, membershipCommand } from './membership.js'
import { BENCH_HELP, bench } from './bench/command.js'
import { REPAIR_HELP, repair } from './repair.js'
import { STATUS_HELP, status } from './status.js'
import { STORE_HELP, storeCommand } from './store.js'

const INIT_HELP = `kvorum cluster init --nodes URL,URL,... [--zones z1,z2,...] [--partitions 256] --store name:n=3,r=2,w=2 [--store ...] [--token T]
  Write the first cluster definition to running nodes.`

const HELP = `kvorum: command line of the Kvorum key-value store

${DEV_HELP}

${INIT_HELP}

${DATA_HELP}

${MEMBERSHIP_HELP}

${STORE_HELP}

${STATUS_HELP}

${REPAIR_HELP}

${BENCH_HELP}`

async function clusterCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv
  if (sub === 'plan' || sub === 'rebalance' || sub === 'abort' || sub === 'status') return membershipCommand(sub, rest)
  if (sub !== 'init') throw new UsageError(`unknown cluster command ${sub ?? '(none)'}; try: kvorum cluster init|plan|rebalance|abort|status`)
  const { values } = parse(rest, {
    nodes: { type: 'string' },
    zones: { type: 'string' },
    partitions: { type: 'string' },
    store: { type: 'string', multiple: true },
    token: { type: 'string' },
  })
  if (!values.nodes) throw new UsageError('--nodes URL,URL,... is required')
  const urls = values.nodes
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  const zones = values.zones?.split(',').map((s) => s.trim())
  if (zones && zones.length !== urls.length) throw new UsageError(`--zones must name one zone per node (${urls.length}), got ${zones.length}`)
  const stores = (values.store ?? ['default:n=3,r=2,w=2']).map(parseStore)
  const def = await initCluster({
    urls,
    partitions: intFlag(values.partitions, 'partitions', 1, 65536, 256),
    stores,
    ...(zones ? { zones } : {}),
    ...tokenFlag(values.token),
  })
  console.log(`cluster version ${def.version} installed on ${def.nodes.length} nodes: ${def.nodes.map((n) => n.id).join(', ')}`)
  return 0
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'dev':
      await dev(rest)
      return -1
    case 'cluster':
      return clusterCommand(rest)
    case 'get':
    case 'put':
    case 'delete':
      return dataCommand(command, rest)
    case 'status':
      return status(rest)
    case 'store':
      return storeCommand(rest)
    case 'repair':
      return repair(rest)
    case 'bench':
      return bench(rest)
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(HELP)
      return 0
    default:
      throw new UsageError(`unknown command ${command}`)
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code)
  },
  (e) => {
    if (e instanceof UsageError) {
      console.error(`kvorum: ${e.message}\n\n${HELP}`)
      process.exit(2)
    }
    if (e instanceof KvorumError) {
      console.error(`kvorum: ${e.code}: ${e.message}`)
      process.exit(1)
    }
    console.error(e)
    process.exit(1)
  },
)
