import { connect } from '@kvorum/client'
import type { StoreDef, StoreSettings } from '@kvorum/core'
import { ACCESS_FLAGS, UsageError, accessFlags, intFlag, parse, seedsFlag } from './args.js'
import { parseStore } from './cluster-init.js'
import { progressPrinter } from './membership.js'

export const STORE_LIST_HELP = `kvorum store list --seeds URL [--token T] [--json]
  Every store of the cluster and its settings.`

export const STORE_CREATE_HELP = `kvorum store create NAME[:field=value,...] --seeds URL [--token T] [--json]
  Add a store on every node, e.g. kvorum store create carts:n=3,r=2,w=2,conflict=lww.
  Fields as in cluster init: n, r, w, pr, pw, conflict (siblings|lww), maxValueBytes, maxSiblings,
  tombstoneGraceMs; fields not named take their defaults (n=3 r=2 w=2 pr=0 pw=1 siblings).
  Waits until every node holds the new definition; a node that is down makes it fail (start it and
  run the command again). Refused while a membership change is in progress.`

export const STORE_ALTER_HELP = `kvorum store alter NAME:field=value,... --seeds URL [--token T] [--json] [--drain-ms MS] [--grace-ms MS]
  Change a store's quorums, limits, conflict mode or tombstone grace, e.g. kvorum store alter carts:r=1,w=3.
  They apply from each node's next request, once every node holds them (a node that is down makes it fail).
  A new n (carts:n=5) moves replicas: it runs as a rebalance, in the stages of a membership change, with
  the same progress display; killed, kvorum cluster rebalance resumes it. Other fields are applied first,
  so carts:n=2,r=1,w=1 lowers the quorums before the replicas go.`

const FLAGS = {
  seeds: { type: 'string' },
  ...ACCESS_FLAGS,
  json: { type: 'boolean' },
  'drain-ms': { type: 'string' },
  'grace-ms': { type: 'string' },
} as const

/** One line of settings per store, aligned. */
function describe(s: StoreDef): string {
  const grace = s.tombstoneGraceMs % 3_600_000 === 0 ? `${s.tombstoneGraceMs / 3_600_000}h` : `${s.tombstoneGraceMs}ms`
  return `${s.name}  n=${s.n} r=${s.r} w=${s.w} pr=${s.pr} pw=${s.pw} conflict=${s.conflict} maxValueBytes=${s.maxValueBytes} maxSiblings=${s.maxSiblings} tombstoneGrace=${grace}`
}

/** The fields named in `NAME:field=value,...`, without defaults filled in. */
function settingsOf(spec: string): { name: string; settings: StoreSettings & { n?: number } } {
  const colon = spec.indexOf(':')
  if (colon <= 0) throw new UsageError(`store alter takes NAME:field=value,..., e.g. carts:r=1,w=3; got ${spec}`)
  const full = parseStore(spec)
  const named = new Set(
    spec
      .slice(colon + 1)
      .split(',')
      .filter(Boolean)
      .map((kv) => kv.split('=', 1)[0]),
  )
  const settings = Object.fromEntries(Object.entries(full).filter(([k]) => named.has(k)))
  return { name: full.name, settings }
}

/** `kvorum store list|create|alter`. */
export async function storeCommand(sub: 'list' | 'create' | 'alter', rest: string[]): Promise<number> {
  const { values, positionals } = parse(rest, FLAGS)
  const want = sub === 'list' ? 0 : 1
  if (positionals.length !== want) throw new UsageError(sub === 'list' ? 'store list takes no arguments' : `store ${sub} takes one NAME[:field=value,...]`)
  const spec = positionals[0] as string
  // Checked before connecting: a mistake in the spec is a usage error, not a cluster one.
  const created = sub === 'create' ? parseStore(spec) : null
  const altered = sub === 'alter' ? settingsOf(spec) : null
  const kv = await connect({ seeds: seedsFlag(values.seeds), ...accessFlags(values) })
  try {
    if (!created && !altered) {
      const { version, stores } = kv.cluster
      if (values.json) console.log(JSON.stringify({ version, stores }))
      else {
        console.log(`cluster version ${version}: ${stores.length} store${stores.length === 1 ? '' : 's'}`)
        for (const s of stores) console.log(`  ${describe(s)}`)
      }
      return 0
    }
    const name = created?.name ?? (altered?.name as string)
    const { n, ...settings } = altered?.settings ?? {}
    let def = created ? await kv.createStore(created) : null
    // The newest definition any node holds (the seed may lag), so a plan of n is made from it.
    if (altered) await kv.clusterVersions()
    const current = kv.cluster.stores.find((s) => s.name === name)?.n
    const moving = altered !== null && n !== undefined && n !== current
    // A smaller n needs r and w that fit in it already: quorums first; a larger n, quorums after.
    const settingsFirst = !moving || (n as number) < (current ?? 0)
    if (altered && settingsFirst && (Object.keys(settings).length > 0 || !moving)) def = await kv.alterStore(name, settings)
    if (moving) {
      // A change of n moves replicas: it runs as a rebalance, resumable with kvorum cluster rebalance.
      const plan = kv.planReplicaChange(name, n)
      const sum = (load: Record<string, number>) => Object.values(load).reduce((a, b) => a + b, 0)
      const dropped = sum(plan.movement.loadBefore) - sum(plan.movement.loadAfter)
      const what =
        dropped > 0 ? `drops ${dropped} replica-partitions at cleanup` : `copies ${plan.movement.replicaPartitionsMoved} replica-partitions to new replicas`
      console.error(`store ${name}: n → ${n} ${what}, as a rebalance (killed, run kvorum cluster rebalance to resume it)`)
      const drain = values['drain-ms']
      const grace = values['grace-ms']
      def = await kv.rebalance(plan, {
        onProgress: progressPrinter(),
        ...(drain ? { drainMs: intFlag(drain, 'drain-ms', 0, 600_000, 0) } : {}),
        ...(grace ? { cleanupGraceMs: intFlag(grace, 'grace-ms', 0, 600_000, 0) } : {}),
      })
      if (!settingsFirst && Object.keys(settings).length > 0) def = await kv.alterStore(name, settings)
    }
    def ??= kv.cluster
    const store = def.stores.find((s) => s.name === name) as StoreDef
    if (values.json) console.log(JSON.stringify({ version: def.version, store }))
    else console.log(`cluster version ${def.version} on every node: ${describe(store)}`)
    return 0
  } finally {
    await kv.close()
  }
}
