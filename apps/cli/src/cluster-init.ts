import {
  type ClusterDef,
  type NodeDef,
  type StoreDef,
  ClusterExistsError,
  NodeUnavailableError,
  sameDefinition,
  initialAssignment,
  storeDef,
  validateCluster,
} from '@kvorum/core'
import { HttpTransport } from '@kvorum/client'
import { type ClusterAccess, UsageError } from './args.js'

/** Parse `name:n=3,r=2,w=2,conflict=lww` into a store definition. */
export function parseStore(spec: string): StoreDef {
  const [name, rest = ''] = spec.split(':', 2) as [string, string?]
  const fields: Record<string, string | number> = {}
  for (const part of rest.split(',').filter(Boolean)) {
    const [k, v] = part.split('=', 2)
    if (!k || v === undefined) throw new UsageError(`--store ${spec}: write fields as key=value, e.g. default:n=3,r=2,w=2`)
    fields[k] = k === 'conflict' ? v : Number(v)
  }
  const known = ['n', 'r', 'w', 'pr', 'pw', 'conflict', 'maxValueBytes', 'maxSiblings', 'tombstoneGraceMs']
  for (const k of Object.keys(fields)) if (!known.includes(k)) throw new UsageError(`--store ${spec}: unknown field ${k} (known: ${known.join(', ')})`)
  return storeDef({ name, ...(fields as Partial<StoreDef>) })
}

export interface InitOptions {
  readonly urls: readonly string[]
  readonly zones?: readonly string[]
  readonly partitions: number
  readonly stores: readonly StoreDef[]
  /** Credentials and TLS (the admin credential signs the definition). */
  readonly access?: ClusterAccess
}

/**
 * Write a first cluster definition to running nodes: ask each for its id,
 * assign partitions evenly (zone-aware), install it everywhere. A node that
 * already holds a definition is left alone unless it is the same cluster.
 */
export async function initCluster(opts: InitOptions): Promise<ClusterDef> {
  const transport = new HttpTransport(opts.access ?? {})
  try {
    const nodes: NodeDef[] = []
    for (const [i, url] of opts.urls.entries()) {
      const probe = transport.node({ id: `node${i}`, url })
      const health = await probe.health({ timeoutMs: 3000 }).catch((e: Error) => {
        throw new NodeUnavailableError(url, `did not answer /health (${e.message}); is kvorum-node running there?`)
      })
      const zone = opts.zones?.[i]
      nodes.push(zone ? { id: health.id, url, zone } : { id: health.id, url })
    }
    const def = validateCluster({ version: 1, partitions: opts.partitions, nodes, assignment: initialAssignment(nodes, opts.partitions), stores: opts.stores })
    for (const node of nodes) {
      const held = await transport.node(node).getCluster({ timeoutMs: 3000 })
      // The same cluster again (a re-run) is fine; its signature is not part of what it says.
      if (held && !sameDefinition(held, def)) {
        throw new ClusterExistsError(node.url, held.version)
      }
    }
    for (const node of nodes) await transport.node(node).putCluster({ timeoutMs: 3000 }, def)
    return def
  } finally {
    await transport.close()
  }
}
