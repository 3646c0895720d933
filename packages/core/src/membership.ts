import { claim, movement, type Movement } from './claim.js'
import { CLUSTER_LIMITS, type ClusterDef, type MoveState, type NodeDef, type StoreDef, findStore } from './cluster.js'
import { assert, InvalidInputError } from './errors.js'
import { Placement } from './placement.js'

/** Assignment entries one step of a plan changes at most, by default (MEMBERSHIP.md: "e.g. 8"). */
export const DEFAULT_ENTRIES_PER_STEP = 8

/** What an operator asks for. */
export interface MembershipChange {
  /** Nodes to add (their ids must be new). */
  readonly add?: readonly NodeDef[] | undefined
  /** Node ids to remove. */
  readonly remove?: readonly string[] | undefined
  /** Node id → the node that takes its place (same zone unless allowNewZone). */
  readonly replace?: Readonly<Record<string, NodeDef>> | undefined
  /** Allow the set of zones to change (reorders most preference lists). */
  readonly allowNewZone?: boolean | undefined
  /** Entries changed per step. Default 8. */
  readonly entriesPerStep?: number | undefined
}

/**
 * A plan: where the cluster is going and how. It is a pure function of the
 * definition it was made from and the change, so any driver can run it and
 * two drivers resuming it write identical definitions.
 */
export interface MembershipPlan {
  readonly planId: string
  readonly target: readonly string[]
  readonly targetNodes: readonly NodeDef[]
  readonly entriesPerStep: number
  readonly steps: number
  /** Replica movement of the whole plan, for the store with the largest n. */
  readonly movement: Movement
  /** The n movement was measured with. */
  readonly n: number
  /** Stores whose n the plan changes, with their new n (see MoveState.storeN). */
  readonly storeN?: Readonly<Record<string, number>>
}

/** The n movement is measured with: the largest of the stores' (all stores share the assignment). */
function largestN(def: ClusterDef): number {
  return Math.max(1, ...def.stores.map((s) => s.n))
}

/** The definition version a plan was made from: its id starts with it (`p<version>-`). */
export function planBaseVersion(planId: string): number {
  return Number(/^p(\d+)-/.exec(planId)?.[1] ?? Number.NaN)
}

/** A short id naming the plan, derived from what it does (so it is the same for every driver). */
function planIdOf(version: number, target: readonly string[], nodes: readonly NodeDef[]): string {
  let h = 2166136261
  for (const s of [String(version), ...target, ...nodes.map((n) => `${n.id}@${n.url}@${n.zone ?? ''}`)]) {
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619)
    h = Math.imul(h ^ 0xff, 16777619)
  }
  return `p${version}-${(h >>> 0).toString(16)}`
}

/** Plan a change of the cluster's nodes: the target layout, its steps and its movement. Changes nothing. */
export function planChange(def: ClusterDef, change: MembershipChange): MembershipPlan {
  if (def.move)
    throw new InvalidInputError(
      `plan ${def.move.planId} is in progress (step ${def.move.step} of ${def.move.steps}, ${def.move.stage}): resume it or abort it first`,
    )
  const ids = new Set(def.nodes.map((n) => n.id))
  let nodes = [...def.nodes]
  for (const [old, next] of Object.entries(change.replace ?? {})) {
    if (!ids.has(old)) throw new InvalidInputError(`cannot replace ${old}: no such node`)
    if (ids.has(next.id)) throw new InvalidInputError(`the node replacing ${old} needs a new id, not ${next.id}`)
    nodes = nodes.map((n) => (n.id === old ? { ...next, ...(next.zone === undefined && n.zone !== undefined ? { zone: n.zone } : {}) } : n))
  }
  for (const id of change.remove ?? []) {
    if (!ids.has(id)) throw new InvalidInputError(`cannot remove ${id}: no such node`)
    nodes = nodes.filter((n) => n.id !== id)
  }
  for (const node of change.add ?? []) {
    if (nodes.some((n) => n.id === node.id || n.url === node.url)) throw new InvalidInputError(`node ${node.id} (${node.url}) is already in the cluster`)
    nodes.push(node)
  }
  const n = largestN(def)
  if (new Set(nodes.map((x) => x.id)).size < n)
    throw new InvalidInputError(`a store keeps ${n} replicas: the cluster needs at least ${n} nodes, the change leaves ${nodes.length}`)
  const entriesPerStep = change.entriesPerStep ?? DEFAULT_ENTRIES_PER_STEP
  if (!Number.isInteger(entriesPerStep) || entriesPerStep < 1) throw new InvalidInputError(`entriesPerStep must be a positive integer, got ${entriesPerStep}`)
  const target = claim(def, nodes, n, change.allowNewZone ? { allowNewZone: true } : {})
  const changed = target.filter((owner, p) => owner !== def.assignment[p]).length
  const after: ClusterDef = { ...def, nodes, assignment: target }
  return {
    planId: planIdOf(def.version, target, nodes),
    target,
    targetNodes: nodes,
    entriesPerStep,
    steps: Math.max(1, Math.ceil(changed / entriesPerStep)),
    movement: movement(def, after, n),
    n,
  }
}

/** This step's assignment: the current one with its first `k` entries that differ from the target changed. */
function stepAssignment(current: readonly string[], target: readonly string[], k: number): string[] {
  const next = [...current]
  let changed = 0
  for (let p = 0; p < next.length && changed < k; p++) {
    if (next[p] !== target[p]) {
      next[p] = target[p] as string
      changed++
    }
  }
  return next
}

/** Partitions whose replica sets differ between two definitions' placements (any store). */
function changedPartitions(before: Placement, after: Placement, def: ClusterDef): number[] {
  const out: number[] = []
  for (let q = 0; q < def.partitions; q++) {
    for (const s of def.stores) {
      const a = JSON.stringify([before.readers(q, s), before.writers(q, s)])
      const b = JSON.stringify([after.readers(q, s), after.writers(q, s)])
      if (a !== b) {
        out.push(q)
        break
      }
    }
  }
  return out
}

/** The next version of `def`, with placement bumped for every partition whose sets change. */
function nextVersion(def: ClusterDef, fields: Partial<ClusterDef>, drop: readonly ('move' | 'abortedPlan')[] = []): ClusterDef {
  const version = def.version + 1
  const out: Record<string, unknown> = { ...def, ...fields, version }
  for (const k of drop) delete out[k]
  const next = out as unknown as ClusterDef
  const placement = [...(def.placement ?? new Array<number>(def.partitions).fill(0))]
  for (const q of changedPartitions(new Placement(def), new Placement(next), def)) placement[q] = version
  return { ...next, placement }
}

/** Union of node lists, the first's order first. */
function unionNodes(a: readonly NodeDef[], b: readonly NodeDef[]): NodeDef[] {
  return [...a, ...b.filter((n) => !a.some((m) => m.id === n.id))]
}

function sameAssignment(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

/**
 * The definition after `def` in running `plan`, or null when the plan is
 * done. A pure function of both: resuming drivers write identical versions.
 * Outside a move it starts the next step (write-both); then read-new,
 * use-new (the assignment becomes the step's), cleanup, and the next step.
 */
export function advance(def: ClusterDef, plan: MembershipPlan): ClusterDef | null {
  const move = def.move
  if (move && move.planId !== plan.planId) throw new InvalidInputError(`plan ${move.planId} is in progress, not ${plan.planId}: resume or abort it first`)
  if (!move) {
    const done = sameAssignment(def.assignment, plan.target)
    const stale = () => {
      // A plan is made from one definition; started on a later one its target could undo what
      // came between (an n-change plan run after an add would send the new node's entries back).
      const base = planBaseVersion(plan.planId)
      if (base !== def.version)
        throw new InvalidInputError(
          `plan ${plan.planId} was made from cluster version ${base}; the cluster is at version ${def.version} now: plan the change again`,
        )
    }
    const nodesDone = def.nodes.length === plan.targetNodes.length && def.nodes.every((n) => plan.targetNodes.some((m) => m.id === n.id))
    const storesDone = Object.entries(plan.storeN ?? {}).every(([name, n]) => def.stores.find((s) => s.name === name)?.n === n)
    if (done && nodesDone && storesDone) return null
    if (done && !storesDone) {
      stale()
      // A change of n: one step over every partition, the assignment unchanged. Checked again
      // here: the store may have changed since the plan was made (a larger r, say).
      for (const [name, n] of Object.entries(plan.storeN ?? {})) replicaChangeError(def, name, n, true)
      const state: MoveState = {
        planId: plan.planId,
        step: 1,
        steps: 1,
        stage: 'write-both',
        next: def.assignment,
        target: def.assignment,
        targetNodes: def.nodes,
        entriesPerStep: plan.entriesPerStep,
        storeN: plan.storeN ?? {},
      }
      return nextVersion(def, { move: state }, ['abortedPlan'])
    }
    stale()
    if (done) return nextVersion(def, { nodes: plan.targetNodes }, ['abortedPlan'])
    const remaining = def.assignment.filter((owner, p) => owner !== plan.target[p]).length
    const state: MoveState = {
      planId: plan.planId,
      step: 1,
      steps: Math.ceil(remaining / plan.entriesPerStep),
      stage: 'write-both',
      next: stepAssignment(def.assignment, plan.target, plan.entriesPerStep),
      target: plan.target,
      targetNodes: plan.targetNodes,
      entriesPerStep: plan.entriesPerStep,
    }
    return nextVersion(def, { nodes: unionNodes(def.nodes, plan.targetNodes), move: state }, ['abortedPlan'])
  }
  switch (move.stage) {
    case 'write-both':
      return nextVersion(def, { move: { ...move, stage: 'read-new' } })
    case 'read-new': {
      // The stores take their new n at the switch, as the assignment takes the step's.
      const stores = def.stores.map((s) => (move.storeN?.[s.name] === undefined ? s : { ...s, n: move.storeN[s.name] as number }))
      return nextVersion(def, { assignment: move.next, stores, move: { ...move, stage: 'use-new' } })
    }
    case 'use-new':
      return nextVersion(def, { move: { ...move, stage: 'cleanup' } })
    case 'cleanup': {
      if (sameAssignment(def.assignment, move.target)) return nextVersion(def, { nodes: move.targetNodes }, ['move'])
      // The next step starts at once: the move stays in the definition, so its step count survives.
      const next = stepAssignment(def.assignment, move.target, move.entriesPerStep)
      return nextVersion(def, { move: { ...move, step: move.step + 1, stage: 'write-both', next } })
    }
  }
}

/** True when a move in this stage can still be aborted with nothing lost (the old replicas are complete). */
export function abortable(def: ClusterDef): boolean {
  return def.move?.stage === 'write-both' || def.move?.stage === 'read-new'
}

/**
 * The definition that ends the move in progress before its switch: the old
 * assignment stays, the move goes, and the joiners that own nothing leave
 * the node list (they drop their copies when they install it).
 */
export function abortMove(def: ClusterDef): ClusterDef {
  const move = def.move
  if (!move) throw new InvalidInputError('no membership change is in progress')
  if (!abortable(def))
    throw new InvalidInputError(
      `step ${move.step} of plan ${move.planId} has switched to the new replicas (${move.stage}): it cannot be aborted; run it to the end, then plan the reverse change`,
    )
  const owners = new Set(def.assignment)
  const nodes = def.nodes.filter((n) => owners.has(n.id))
  assert(nodes.length > 0, 'an aborted move keeps the nodes that own partitions')
  return nextVersion(def, { nodes, abortedPlan: move.planId }, ['move'])
}

/** The plan of the move in progress, rebuilt from the definition (to resume it from any process). */
export function planInProgress(def: ClusterDef): MembershipPlan {
  const move = def.move
  if (!move) throw new InvalidInputError('no membership change is in progress')
  const n = largestN(def)
  const before = { assignment: def.assignment, nodes: def.nodes }
  return {
    planId: move.planId,
    target: move.target,
    targetNodes: move.targetNodes,
    entriesPerStep: move.entriesPerStep,
    steps: move.steps,
    movement: movement(before, { assignment: move.target, nodes: move.targetNodes }, n),
    n,
    ...(move.storeN ? { storeN: move.storeN } : {}),
  }
}

/** What a plan will copy and hold twice, estimated from the bytes the nodes store now. */
export interface CopyEstimate {
  /** Stored bytes per replica-partition, on average over the nodes that answered. */
  readonly bytesPerReplicaPartition: number
  /** Bytes copied to new replicas over the whole plan. */
  readonly bytesToCopy: number
  /**
   * Extra disk the cluster holds at most until a step's cleanup: a step's
   * copies exist on both the joiners and the leavers until the leavers drop
   * them, and every step cleans up before the next starts.
   */
  readonly peakExtraBytes: number
  /** Nodes whose size was not known (down, or too old to say): the estimate leaves them out. */
  readonly unknown: readonly string[]
}

/**
 * Estimate a plan's copy from each node's stored key and value bytes (its
 * `/health`), assuming a node's bytes spread evenly over the partitions it
 * replicates. Partition sizes differ with the keys they hold, so this is a
 * guide, not a bound.
 */
export function estimateCopy(plan: MembershipPlan, bytesByNode: Readonly<Record<string, number | undefined>>): CopyEstimate {
  let bytes = 0
  let load = 0
  const unknown: string[] = []
  for (const [id, replicas] of Object.entries(plan.movement.loadBefore)) {
    const b = bytesByNode[id]
    if (b === undefined) {
      unknown.push(id)
      continue
    }
    bytes += b
    load += replicas
  }
  const perReplica = load > 0 ? bytes / load : 0
  const bytesToCopy = Math.round(perReplica * plan.movement.replicaPartitionsMoved)
  return { bytesPerReplicaPartition: perReplica, bytesToCopy, peakExtraBytes: Math.round(bytesToCopy / plan.steps), unknown }
}

/** Throws unless `store` may take `n` in `def` (at plan time, and again when the move starts); returns the store. */
function replicaChangeError(def: ClusterDef, storeName: string, n: number, starting: boolean): StoreDef {
  const store = findStore(def, storeName)
  const owners = new Set(def.assignment).size
  if (!Number.isInteger(n) || n < 1 || n > Math.min(owners, CLUSTER_LIMITS.maxReplicas))
    throw new InvalidInputError(`store ${storeName}: n must be 1..${Math.min(owners, CLUSTER_LIMITS.maxReplicas)} (nodes that own partitions), got ${n}`)
  if (n === store.n && !starting) throw new InvalidInputError(`store ${storeName} already keeps n=${n}`)
  if (store.r > n || store.w > n || store.pr > n || store.pw > n)
    throw new InvalidInputError(
      `store ${storeName}: r=${store.r}, w=${store.w}, pr=${store.pr}, pw=${store.pw} must fit in n=${n}: lower them first (kvorum store alter)`,
    )
  return store
}

/**
 * Plan a change of one store's n: a move of one step whose N sets have the
 * new n (write-both and the copy, read-new, then the store takes it at
 * use-new, and replicas it no longer uses drop their rows at cleanup).
 * Changes nothing.
 */
export function planReplicaChange(def: ClusterDef, storeName: string, n: number): MembershipPlan {
  if (def.move)
    throw new InvalidInputError(
      `plan ${def.move.planId} is in progress (step ${def.move.step} of ${def.move.steps}, ${def.move.stage}): resume it or abort it first`,
    )
  const store = replicaChangeError(def, storeName, n, false)
  const storeN = { [storeName]: n }
  const before = new Placement(def)
  const after = new Placement({ ...def, stores: def.stores.map((s) => (s.name === storeName ? { ...s, n } : s)) })
  const loadBefore: Record<string, number> = {}
  const loadAfter: Record<string, number> = {}
  let moved = 0
  for (let q = 0; q < def.partitions; q++) {
    const o = before.readers(q, store)
    const next = after.readers(q, { name: storeName, n })
    for (const id of o) loadBefore[id] = (loadBefore[id] ?? 0) + 1
    for (const id of next) loadAfter[id] = (loadAfter[id] ?? 0) + 1
    moved += next.filter((id) => !o.includes(id)).length
  }
  const ideal = Object.fromEntries(def.nodes.map((x) => [x.id, (n * def.partitions) / new Set(def.assignment).size]))
  return {
    planId: `${planIdOf(def.version, def.assignment, def.nodes)}-n${storeName}-${n}`.slice(0, 64),
    target: def.assignment,
    targetNodes: def.nodes,
    entriesPerStep: def.partitions,
    steps: 1,
    movement: {
      entriesMoved: 0,
      replicaPartitionsMoved: moved,
      // Every new replica of a change of n is on a node already in the cluster.
      movedOntoOldNodes: moved,
      movedOntoOldNodesUnforced: 0,
      movedAcrossZones: 0,
      loadBefore,
      loadAfter,
      idealLoad: ideal,
      joinerIdeal: 0,
      joinerLoad: 0,
    },
    n,
    storeN,
  }
}
