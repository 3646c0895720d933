import { type ClusterDef, type MembershipChange, type MembershipPlan, type NodeDef, KvorumError, estimateCopy } from '@kvorum/core'
import { type Kvorum, type RebalanceProgress, HttpTransport, REBALANCE_DEFAULTS, connect } from '@kvorum/client'
import { ACCESS_FLAGS, type ClusterAccess, UsageError, accessFlags, parse, seedUrl, seedsFlag } from './args.js'

export const PLAN_HELP = `kvorum cluster plan      --seeds URL (--add URL[@zone] ... | --remove ID ... | --replace ID=URL ...) [--dead] [--entries-per-step 8] [--json]
  Print what a change would move, and change nothing: steps, assignment entries and replica-partitions
  moved against the ideal, moves onto old nodes and across zones, replica load per node before and after,
  the bytes to copy and the peak extra disk (estimated from what the nodes store), and warnings.
  URL is host:port or http(s)://host:port; a joiner must be running (its id comes from its /health).
  --dead: the removed or replaced nodes are gone; copy from the surviving replicas, do not wait for them.`

export const REBALANCE_HELP = `kvorum cluster rebalance --seeds URL [same arguments as plan]  [--drain-ms MS] [--grace-ms MS]
  Carry the change out, stage by stage, with a progress display. Killed at any moment, running it again
  (with or without the arguments) resumes the plan in progress.`

export const ABORT_HELP = `kvorum cluster abort     --seeds URL
  End a change before its switch to the new replicas; the old layout serves again, nothing is lost.`

export const CLUSTER_STATUS_HELP = `kvorum cluster status    --seeds URL [--json]
  The definition version, any change in progress, and which version each node holds.`

const FLAGS = {
  seeds: { type: 'string' },
  ...ACCESS_FLAGS,
  add: { type: 'string', multiple: true },
  remove: { type: 'string', multiple: true },
  replace: { type: 'string', multiple: true },
  dead: { type: 'boolean' },
  'allow-new-zone': { type: 'boolean' },
  'entries-per-step': { type: 'string' },
  'drain-ms': { type: 'string' },
  'grace-ms': { type: 'string' },
  json: { type: 'boolean' },
} as const

type Values = ReturnType<typeof parse<typeof FLAGS>>['values']

/** A node that is about to join: its id comes from its own /health, so it must be running. */
async function joiner(spec: string, access: ClusterAccess): Promise<NodeDef> {
  const at = spec.lastIndexOf('@')
  const zone = at > 0 ? spec.slice(at + 1) : undefined
  // host:port is enough, as for --seeds; a full http(s) URL works too.
  const url = seedUrl(at > 0 ? spec.slice(0, at) : spec)
  const transport = new HttpTransport(access)
  try {
    const health = await transport.node({ id: 'joiner', url }).health({ timeoutMs: 2000 })
    const inZone = zone ?? health.zone
    return inZone ? { id: health.id, url, zone: inZone } : { id: health.id, url }
  } catch (e) {
    throw new KvorumError('KV_NODE_UNAVAILABLE', `${url} did not answer /health (${(e as Error).message}): start kvorum-node there first`)
  } finally {
    await transport.close()
  }
}

async function changeOf(values: Values): Promise<MembershipChange | null> {
  const access = accessFlags(values)
  const add = await Promise.all((values.add ?? []).map((spec) => joiner(spec, access)))
  const replace: Record<string, NodeDef> = {}
  for (const spec of values.replace ?? []) {
    const eq = spec.indexOf('=')
    if (eq <= 0) throw new UsageError(`--replace takes ID=URL, got ${spec}`)
    replace[spec.slice(0, eq)] = await joiner(spec.slice(eq + 1), access)
  }
  const remove = values.remove ?? []
  if (add.length + remove.length + Object.keys(replace).length === 0) return null
  const entries = values['entries-per-step']
  return {
    add,
    remove,
    replace,
    ...(values['allow-new-zone'] ? { allowNewZone: true } : {}),
    ...(entries ? { entriesPerStep: positive(entries, 'entries-per-step') } : {}),
  }
}

function positive(text: string, name: string): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a non-negative integer, got ${text}`)
  return n
}

/** Bytes as a person reads them. */
function sizeOf(bytes: number): string {
  if (bytes < 1e3) return `${Math.round(bytes)} B`
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(1)} kB`
  if (bytes < 1e9) return `${(bytes / 1e6).toFixed(1)} MB`
  return `${(bytes / 1e9).toFixed(2)} GB`
}

type NodeSizes = Awaited<ReturnType<Kvorum['clusterVersions']>>

function describePlan(def: ClusterDef, plan: MembershipPlan, nodes: NodeSizes): string {
  const m = plan.movement
  const ids = [...new Set([...Object.keys(m.loadBefore), ...Object.keys(m.loadAfter)])].sort()
  const estimate = estimateCopy(plan, Object.fromEntries(nodes.map((n) => [n.id, n.bytes])))
  const lines = [
    `plan ${plan.planId}: ${plan.steps} step(s) of at most ${plan.entriesPerStep} assignment entries (Q=${def.partitions}, n=${plan.n})`,
    `  assignment entries moved: ${m.entriesMoved}`,
    `  replica-partitions moved: ${m.replicaPartitionsMoved}${m.joinerIdeal ? ` (joiners' ideal ${m.joinerIdeal.toFixed(1)})` : ''}`,
    `  moved onto old nodes: ${m.movedOntoOldNodes}, across zones: ${m.movedAcrossZones}`,
    `  estimated bytes to copy: ${sizeOf(estimate.bytesToCopy)} (${sizeOf(estimate.bytesPerReplicaPartition)} per replica-partition, from the key and value bytes the nodes store)`,
    `  peak extra disk until a step's cleanup: about ${sizeOf(estimate.peakExtraBytes)} (a step's copies are on joiners and leavers until the leavers drop them)`,
    '  replica load per node, before → after:',
    ...ids.map((id) => `    ${id.padEnd(12)} ${String(m.loadBefore[id] ?? 0).padStart(6)} → ${String(m.loadAfter[id] ?? 0).padStart(6)}`),
  ]
  const warnings = [
    ...def.stores
      .filter((s) => s.w === 1)
      .map((s) => `  warning: store ${s.name} has w=1: a write acknowledged by one replica that fails before the copy is at risk`),
    ...nodes
      .filter((n) => n.error !== undefined)
      .map((n) => `  warning: ${n.id} does not answer (${n.error}): a rebalance waits for it, or pass --remove ${n.id} --dead if it is gone`),
    ...(estimate.unknown.length > 0 ? [`  warning: the size of ${estimate.unknown.join(', ')} is unknown; the estimate leaves them out`] : []),
    ...(m.movedAcrossZones > 0
      ? [`  warning: ${m.movedAcrossZones} replica-partitions change zone: the set of zones changes and most preference lists reorder`]
      : []),
  ]
  return [...lines, ...warnings].join('\n')
}

function progressLine(p: RebalanceProgress): string {
  const waiting = p.waitingFor.length > 0 ? `, waiting for ${p.waitingFor.join(', ')}` : ''
  let copy = ''
  if (p.phase === 'copy' && p.partitionsToCopy > 0) {
    const seconds = p.copyElapsedMs / 1000
    const rate = seconds > 0 ? ` (${Math.round(p.keysCopied / seconds)} keys/s, ${(p.bytesCopied / 1e6 / seconds).toFixed(1)} MB/s)` : ''
    const left = p.partitionsToCopy - p.partitionsCopied
    const eta = p.partitionsCopied > 0 && left > 0 ? `, ETA ${Math.ceil((seconds / p.partitionsCopied) * left)} s` : ''
    const throttled = p.copyRateLimit < REBALANCE_DEFAULTS.maxKeysPerSecond ? `, slowed to ${Math.round(p.copyRateLimit)} keys/s (nodes answer slowly)` : ''
    copy = `, partitions ${p.partitionsCopied}/${p.partitionsToCopy}${rate}${eta}${throttled}`
  }
  // The last definitions of a plan carry no move: they are the plan's end, not a step of it.
  if (p.stage === 'done') return `done [${p.phase}] v${p.version}${waiting}`
  return `step ${p.step}/${p.steps} ${p.stage} [${p.phase}] v${p.version}: ${p.keysCopied} keys / ${p.bytesCopied} bytes copied${copy}, hint backlog ${p.hintBacklog}${waiting}`
}

/** Interval between repeated progress lines of one phase when stderr is not a terminal, ms. */
const LOG_EVERY_MS = 2000

/**
 * Prints progress: a new line whenever the step, stage or phase changes; in
 * between, on a terminal the line is rewritten in place, and in a log a line
 * is added at most every LOG_EVERY_MS.
 */
export function progressPrinter(): (p: RebalanceProgress) => void {
  const tty = process.stderr.isTTY === true
  let last = ''
  let lastAt = 0
  return (p) => {
    const key = `${p.version} ${p.phase} ${p.waitingFor.join(',')}`
    const line = progressLine(p)
    const now = Date.now()
    if (key !== last) {
      process.stderr.write(`${tty && last ? '\n' : ''}${line}${tty ? '' : '\n'}`)
      last = key
      lastAt = now
    } else if (tty) process.stderr.write(`\r${line}\x1b[K`)
    else if (now - lastAt >= LOG_EVERY_MS) {
      process.stderr.write(`${line}\n`)
      lastAt = now
    }
    if (tty && p.phase === 'done') process.stderr.write('\n')
  }
}

async function client(values: Values): Promise<Kvorum> {
  return connect({ seeds: seedsFlag(values.seeds), ...accessFlags(values) })
}

/** `kvorum cluster plan|rebalance|abort|status`. */
export async function membershipCommand(sub: 'plan' | 'rebalance' | 'abort' | 'status', argv: string[]): Promise<number> {
  const { values } = parse(argv, FLAGS)
  const kv = await client(values)
  try {
    if (sub === 'status') return await status(kv, values.json === true)
    if (sub === 'abort') {
      const def = await kv.abortRebalance({ onProgress: progressPrinter() })
      console.log(`aborted: cluster version ${def.version}, assignment as before the step`)
      return 0
    }
    const change = await changeOf(values)
    // Plan from the newest definition any node holds (the seed may lag): a plan made from an older
    // one is refused when it starts.
    const nodes = await kv.clusterVersions()
    // --dead names the nodes that are gone: those removed, and those replaced (a dead disk's node).
    const dead = values.dead ? [...(values.remove ?? []), ...Object.keys(change?.replace ?? {})] : []
    if (sub === 'plan') {
      if (!change) throw new UsageError('say what to change: --add URL, --remove ID or --replace ID=URL')
      const plan = kv.planChange(change)
      const estimate = estimateCopy(plan, Object.fromEntries(nodes.map((n) => [n.id, n.bytes])))
      console.log(values.json ? JSON.stringify({ ...plan, estimate }, null, 2) : describePlan(kv.cluster, plan, nodes))
      return 0
    }
    const inProgress = kv.cluster.move
    const plan = inProgress ? undefined : change ? kv.planChange(change) : null
    if (plan === null) throw new UsageError('no change is in progress: say what to change (--add, --remove, --replace)')
    if (inProgress) console.error(`resuming plan ${inProgress.planId} at step ${inProgress.step} of ${inProgress.steps} (${inProgress.stage})`)
    else if (plan) console.error(describePlan(kv.cluster, plan, nodes))
    const drain = values['drain-ms']
    const grace = values['grace-ms']
    const def = await kv.rebalance(plan, {
      onProgress: progressPrinter(),
      dead,
      ...(drain ? { drainMs: positive(drain, 'drain-ms') } : {}),
      ...(grace ? { cleanupGraceMs: positive(grace, 'grace-ms') } : {}),
    })
    console.log(`done: cluster version ${def.version}, ${def.nodes.length} nodes: ${def.nodes.map((n) => n.id).join(', ')}`)
    return 0
  } finally {
    await kv.close()
  }
}

async function status(kv: Kvorum, json: boolean): Promise<number> {
  const versions = await kv.clusterVersions()
  const def = kv.cluster
  if (json) {
    console.log(JSON.stringify({ version: def.version, move: def.move ?? null, nodes: versions }, null, 2))
  } else {
    console.log(`cluster version ${def.version}, ${def.partitions} partitions, ${def.nodes.length} nodes`)
    if (def.move) console.log(`change in progress: plan ${def.move.planId}, step ${def.move.step} of ${def.move.steps}, stage ${def.move.stage}`)
    else console.log('no change in progress')
    for (const v of versions)
      console.log(
        `  ${v.id.padEnd(12)} ${v.url.padEnd(28)} ${v.version === null ? (v.error ? `unreachable: ${v.error}` : 'no definition') : `version ${v.version}${v.version < def.version ? ' (behind)' : ''}`}`,
      )
  }
  return versions.some((v) => v.version !== def.version) ? 1 : 0
}
