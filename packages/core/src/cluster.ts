import { InvalidInputError, UnknownStoreError } from './errors.js'
import { LIMITS } from './limits.js'

/** One storage node as the cluster knows it. */
export interface NodeDef {
  /** Stable id, e.g. `n1`. */
  readonly id: string
  /** Base URL the SDK talks to, e.g. `http://127.0.0.1:7070`. */
  readonly url: string
  /** Failure domain; replicas of a partition spread across zones first. */
  readonly zone?: string
}

/** How a store resolves concurrent writes. */
export type ConflictMode = 'siblings' | 'lww'

/** A named store and its replication settings. */
export interface StoreDef {
  readonly name: string
  /** Replicas per key. Default 3. */
  readonly n: number
  /** Replies a read waits for. Default 2. */
  readonly r: number
  /** Acknowledgements a write waits for. Default 2. */
  readonly w: number
  /** Primary replicas that must answer a read. Default 0. */
  readonly pr: number
  /** Primary replicas that must acknowledge a write. Default 1 (the coordinator). */
  readonly pw: number
  /** `siblings` (default) keeps concurrent writes; `lww` keeps the latest timestamp and loses the rest. */
  readonly conflict: ConflictMode
  /** Largest value, bytes. Default 1 MiB. */
  readonly maxValueBytes: number
  /** Siblings per key before writes are refused. Default 100. */
  readonly maxSiblings: number
  /** How long a tombstone held by every primary is kept before it is reaped, ms. Default 1 day. */
  readonly tombstoneGraceMs: number
}

/**
 * The stages of one step of a membership change (MEMBERSHIP.md): writes go
 * to old and new replicas while reads stay on the old (`write-both`, which
 * also covers the copy), then reads and coordinators move to the new
 * (`read-new`), then the new assignment alone is used (`use-new`), and after a
 * grace period the replicas that left drop their rows (`cleanup`).
 */
export type MoveStage = 'write-both' | 'read-new' | 'use-new' | 'cleanup'

/** A membership change in progress, carried in the definition so any driver can resume it. */
export interface MoveState {
  /** Names the plan: a definition of another plan is refused while this one runs. */
  readonly planId: string
  /** This step, 1-based, of `steps`. */
  readonly step: number
  readonly steps: number
  readonly stage: MoveStage
  /** This step's assignment (N); `assignment` stays the old one (O) until `use-new`. */
  readonly next: readonly string[]
  /** The plan's final assignment. */
  readonly target: readonly string[]
  /** The plan's final nodes; `nodes` holds every node of the plan (leavers too) until it ends. */
  readonly targetNodes: readonly NodeDef[]
  /** Assignment entries one step changes at most. */
  readonly entriesPerStep: number
  /**
   * Stores whose n the plan changes, with their new n: their N sets use it
   * from write-both on, and the store takes it at use-new. Absent: no n changes.
   */
  readonly storeN?: Readonly<Record<string, number>>
}

/** The cluster definition every node holds, with a version that only grows. */
export interface ClusterDef {
  readonly version: number
  /** Number of partitions Q: a power of two, fixed at creation. */
  readonly partitions: number
  readonly nodes: readonly NodeDef[]
  /** Owner node id of each partition; length Q. */
  readonly assignment: readonly string[]
  readonly stores: readonly StoreDef[]
  /**
   * Per partition, the definition version at which its replica sets last
   * changed: a data request made under an older version is refused for that
   * partition (fencing). Absent: no partition ever moved (all 0).
   */
  readonly placement?: readonly number[]
  /** The membership change in progress, if any. */
  readonly move?: MoveState
  /** The plan the last abort ended (so nodes can tell an abort from another plan). */
  readonly abortedPlan?: string
  /** HMAC of the rest of the definition with the admin secret (signature.ts), so a data credential can relay it. */
  readonly signature?: string
}

/** Defaults applied to a partial store definition. */
export const STORE_DEFAULTS = {
  n: 3,
  r: 2,
  w: 2,
  pr: 0,
  pw: 1,
  conflict: 'siblings',
  maxValueBytes: LIMITS.maxValueBytes,
  maxSiblings: LIMITS.maxSiblings,
  tombstoneGraceMs: 24 * 3600 * 1000,
} as const

/** Fill in defaults for a store definition. */
export function storeDef(partial: Partial<StoreDef> & { name: string }): StoreDef {
  return { ...STORE_DEFAULTS, ...partial }
}

/** Bounds of a cluster definition, checked by validateCluster. */
export const CLUSTER_LIMITS = {
  /** Most replicas per key (a store's n). */
  maxReplicas: 16,
  /** Longest tombstone grace period, ms (one year). */
  maxTombstoneGraceMs: 365 * 24 * 3600 * 1000,
  /** Most nodes in one cluster. */
  maxNodes: 1024,
  /** Longest node URL, characters. */
  maxUrlLength: 2048,
  /** Most stores in one cluster. */
  maxStores: 256,
} as const

const NAME = /^[A-Za-z0-9_.-]{1,64}$/

function fail(message: string): never {
  throw new InvalidInputError(`invalid cluster definition: ${message}`)
}

function isInt(x: unknown, min: number, max: number): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= min && x <= max
}

/** Check a store definition against the cluster's size; returns it typed. */
export function validateStore(s: unknown, nodeCount: number): StoreDef {
  if (typeof s !== 'object' || s === null) fail('a store must be an object')
  const d = s as Record<string, unknown>
  if (typeof d.name !== 'string' || !NAME.test(d.name)) fail(`store name must match ${NAME}: ${String(d.name)}`)
  const name = d.name
  if (!isInt(d.n, 1, Math.min(nodeCount, CLUSTER_LIMITS.maxReplicas)))
    fail(`store ${name}: n must be 1..${Math.min(nodeCount, CLUSTER_LIMITS.maxReplicas)} (nodes that own partitions)`)
  const n = d.n
  if (!isInt(d.r, 1, n)) fail(`store ${name}: r must be 1..n`)
  if (!isInt(d.w, 1, n)) fail(`store ${name}: w must be 1..n`)
  if (!isInt(d.pr, 0, d.r)) fail(`store ${name}: pr must be 0..r`)
  if (!isInt(d.pw, 0, d.w)) fail(`store ${name}: pw must be 0..w`)
  if (d.conflict !== 'siblings' && d.conflict !== 'lww') fail(`store ${name}: conflict must be siblings or lww`)
  if (!isInt(d.maxValueBytes, 0, LIMITS.maxValueBytesCeiling)) fail(`store ${name}: maxValueBytes must be 0..${LIMITS.maxValueBytesCeiling}`)
  if (!isInt(d.maxSiblings, 1, LIMITS.maxSiblingsCeiling)) fail(`store ${name}: maxSiblings must be 1..${LIMITS.maxSiblingsCeiling}`)
  if (!isInt(d.tombstoneGraceMs, 0, CLUSTER_LIMITS.maxTombstoneGraceMs)) fail(`store ${name}: tombstoneGraceMs must be 0..1 year`)
  return d as unknown as StoreDef
}

/** Deepest nesting a definition may have; it needs 3, and printing much deeper JSON overflows the stack. */
const MAX_DEPTH = 8

/** True when objects nest deeper than `max` levels; iterative, so any depth is safe to check. */
function nestedDeeper(root: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[root, 0]]
  for (let top = stack.pop(); top; top = stack.pop()) {
    const [x, depth] = top
    if (typeof x !== 'object' || x === null) continue
    if (depth >= max) return true
    for (const v of Object.values(x)) stack.push([v, depth + 1])
  }
  return false
}

/** Check every field of a cluster definition received from the outside. */
export function validateCluster(x: unknown): ClusterDef {
  if (typeof x !== 'object' || x === null) fail('must be a JSON object')
  if (nestedDeeper(x, MAX_DEPTH)) fail(`nested more than ${MAX_DEPTH} levels deep`)
  const d = x as Record<string, unknown>
  if (!isInt(d.version, 1, Number.MAX_SAFE_INTEGER)) fail('version must be a positive integer')
  const q = d.partitions
  if (!isInt(q, 1, LIMITS.maxPartitions) || (q & (q - 1)) !== 0) fail(`partitions must be a power of two up to ${LIMITS.maxPartitions}`)
  if (!Array.isArray(d.nodes) || d.nodes.length === 0 || d.nodes.length > CLUSTER_LIMITS.maxNodes)
    fail(`nodes must be a list of 1..${CLUSTER_LIMITS.maxNodes} nodes`)
  const ids = new Set<string>()
  for (const n of d.nodes as unknown[]) {
    const node = n as Record<string, unknown>
    if (typeof node !== 'object' || node === null || typeof node.id !== 'string' || !NAME.test(node.id)) fail(`every node needs an id matching ${NAME}`)
    if (typeof node.url !== 'string' || !/^[a-z][a-z0-9+.-]*:\/\/[^\s]+$/.test(node.url) || node.url.length > CLUSTER_LIMITS.maxUrlLength)
      fail(`node ${node.id}: url must be like http://host:port`)
    if (node.zone !== undefined && (typeof node.zone !== 'string' || !NAME.test(node.zone))) fail(`node ${node.id}: zone must match ${NAME}`)
    if (ids.has(node.id)) fail(`node id ${node.id} appears twice`)
    ids.add(node.id)
  }
  if (!Array.isArray(d.assignment) || d.assignment.length !== q) fail(`assignment must list an owner for each of the ${q} partitions`)
  for (const owner of d.assignment as unknown[]) if (typeof owner !== 'string' || !ids.has(owner)) fail(`assignment names unknown node ${String(owner)}`)
  if (d.placement !== undefined) {
    if (!Array.isArray(d.placement) || d.placement.length !== q || !d.placement.every((v) => isInt(v, 0, d.version as number)))
      fail(`placement must list, for each of the ${q} partitions, a version up to the definition's`)
  }
  if (d.move !== undefined) validateMove(d.move, q, ids)
  if (d.abortedPlan !== undefined && (typeof d.abortedPlan !== 'string' || !NAME.test(d.abortedPlan))) fail(`abortedPlan must match ${NAME}`)
  if (d.signature !== undefined && (typeof d.signature !== 'string' || !/^hmac-sha256:[0-9a-f]{64}$/.test(d.signature)))
    fail('signature must be hmac-sha256: and 64 hex digits')
  if (!Array.isArray(d.stores) || d.stores.length > CLUSTER_LIMITS.maxStores) fail(`stores must be a list of at most ${CLUSTER_LIMITS.maxStores} stores`)
  const names = new Set<string>()
  // Preference lists walk partition owners: a node that owns no partition is never a replica.
  const owners = new Set(d.assignment as string[]).size
  for (const s of d.stores as unknown[]) {
    const store = validateStore(s, owners)
    if (names.has(store.name)) fail(`store ${store.name} appears twice`)
    names.add(store.name)
  }
  return d as unknown as ClusterDef
}

const STAGES: readonly MoveStage[] = ['write-both', 'read-new', 'use-new', 'cleanup']

function validateMove(x: unknown, q: number, ids: ReadonlySet<string>): void {
  if (typeof x !== 'object' || x === null) fail('move must be an object')
  const m = x as Record<string, unknown>
  if (typeof m.planId !== 'string' || !NAME.test(m.planId)) fail(`move.planId must match ${NAME}`)
  if (!isInt(m.steps, 1, q) || !isInt(m.step, 1, m.steps as number)) fail('move.step must be 1..move.steps')
  if (!STAGES.includes(m.stage as MoveStage)) fail(`move.stage must be one of ${STAGES.join(', ')}`)
  if (!isInt(m.entriesPerStep, 1, q)) fail(`move.entriesPerStep must be 1..${q}`)
  for (const field of ['next', 'target'] as const) {
    const a = m[field]
    if (!Array.isArray(a) || a.length !== q || !a.every((id) => typeof id === 'string' && ids.has(id)))
      fail(`move.${field} must name a node of the cluster for each of the ${q} partitions`)
  }
  if (
    !Array.isArray(m.targetNodes) ||
    m.targetNodes.length === 0 ||
    !m.targetNodes.every((n) => typeof n === 'object' && n !== null && ids.has((n as NodeDef).id))
  )
    fail('move.targetNodes must list nodes of the cluster')
  if (m.storeN !== undefined) {
    if (typeof m.storeN !== 'object' || m.storeN === null || Array.isArray(m.storeN)) fail('move.storeN must map store names to their new n')
    for (const [name, n] of Object.entries(m.storeN)) {
      if (!NAME.test(name) || !isInt(n, 1, CLUSTER_LIMITS.maxReplicas)) fail(`move.storeN.${name} must be 1..${CLUSTER_LIMITS.maxReplicas}`)
    }
  }
}

/** The named store, or UnknownStoreError. */
export function findStore(cluster: ClusterDef, name: string): StoreDef {
  const store = cluster.stores.find((s) => s.name === name)
  if (!store) throw new UnknownStoreError(name)
  return store
}
