import {
  type ClusterDef,
  ClusterVersionConflictError,
  InvalidInputError,
  type ItemResult,
  Placement,
  type ScanRequest,
  type StoreDef,
  StaleMetadataError,
  planBaseVersion,
  showKey,
  storeTransitionError,
} from '@kvorum/core'

/**
 * What a node may do with a partition under the definition it holds, and
 * which definitions it may install: the node-side rules of MEMBERSHIP.md
 * (ownership and fencing, rule 5; one plan at a time, rule 6; dropping
 * leftover rows, rule 2), as functions of the definitions alone.
 */

/** What a request asks of a replica, for ownership checks. */
export type Role = 'read' | 'coordinate' | 'merge'

/**
 * Stale-metadata error, before anything is applied, when `nodeId` may not
 * do `role` for the key's partition under `cluster`, or when the request was
 * made under a definition older than the partition's last placement change
 * (fencing, MEMBERSHIP rule 5). Requests that carry no version (0) pass only
 * partitions that never moved.
 */
export function ownerError(
  cluster: ClusterDef,
  ring: Placement,
  nodeId: string,
  store: StoreDef,
  key: Uint8Array,
  part: number,
  role: Role,
  requestVersion: number | undefined,
): ItemResult<never> | null {
  const placed = cluster.placement?.[part] ?? 0
  const allowed =
    role === 'read' ? ring.canRead(nodeId, part, store) : role === 'coordinate' ? ring.canCoordinate(nodeId, part, store) : ring.canMerge(nodeId, part, store)
  const fenced = requestVersion !== undefined && requestVersion < placed
  if (allowed && !fenced) return null
  const version = cluster.version
  const why = fenced
    ? `partition ${part} moved at cluster version ${placed}, after the request's version ${requestVersion}`
    : `node ${nodeId} does not ${role} partition ${part} of store ${store.name} (key ${showKey(key)}) under cluster version ${version}`
  const err = new StaleMetadataError(why, version)
  return { ok: false, error: { code: err.code, message: err.message, clusterVersion: version } }
}

/**
 * A scan that carries its sender's version (a listing) is fenced as a get
 * is (MEMBERSHIP rule 5): refused, as a whole, below the partition's last
 * placement change or where this node is in none of the partition's write
 * sets, so a lister with an old definition refreshes instead of taking
 * this node's (perhaps dropped) rows for the partition's. A node of a write
 * set that does not read (an old primary in read-new, a new one in
 * write-both) answers: its rows are the partition's, and an export in
 * read-new reads them too (listing.ts). Null when the scan may go on.
 */
export function scanFenceError(cluster: ClusterDef, ring: Placement, nodeId: string, store: StoreDef, req: ScanRequest): StaleMetadataError | null {
  if (req.version === undefined) return null
  const placed = cluster.placement?.[req.partition] ?? 0
  if (req.version >= placed && ring.canMerge(nodeId, req.partition, store)) return null
  const why =
    req.version < placed
      ? `partition ${req.partition} moved at cluster version ${placed}, after the scan's version ${req.version}`
      : `node ${nodeId} does not hold partition ${req.partition} of store ${store.name} under cluster version ${cluster.version}`
  return new StaleMetadataError(why, cluster.version)
}

/** Why `held` may not be replaced by `valid` (throws), per MEMBERSHIP rule 6 and the store rules. */
export function checkInstall(held: ClusterDef | null, valid: ClusterDef): void {
  const current = held?.version ?? 0
  if (valid.version < current || (valid.version === current && JSON.stringify(valid) !== JSON.stringify(held))) {
    throw new ClusterVersionConflictError(current, valid.version)
  }
  if (held && valid.partitions !== held.partitions) throw new InvalidInputError(`the partition count is fixed at ${held.partitions}; got ${valid.partitions}`)
  const storeChange = held && valid.version > current ? storeTransitionError(held, valid) : null
  if (storeChange) throw new InvalidInputError(storeChange)
  // One plan at a time (MEMBERSHIP rule 6): a definition that ends the move (completion or abort) is
  // fine, and so is one of a plan made from this version or a later one: plans start only where no
  // move runs, so the held one ended (this node missed its end: it was down, or lost commits).
  if (held?.move && valid.move && valid.move.planId !== held.move.planId && !(planBaseVersion(valid.move.planId) >= current)) {
    throw new ClusterVersionConflictError(
      current,
      valid.version,
      `plan ${held.move.planId} is in progress here; a definition of plan ${valid.move.planId} is refused until it ends or is aborted`,
    )
  }
}

/**
 * The partitions whose rows `nodeId` must drop when it installs `next` over
 * `held`, of those it holds rows of (`stored`): those it enters a write set
 * of (leftovers of an earlier ownership must not be served, MEMBERSHIP rule
 * 2), and, once no move is running or at cleanup, those it no longer
 * replicates at all.
 */
export function partitionsToDrop(
  held: ClusterDef,
  next: ClusterDef,
  nodeId: string,
  stored: (store: string) => Iterable<number>,
): { store: string; part: number }[] {
  const before = new Placement(held)
  const after = new Placement(next)
  const cleaning = !next.move || next.move.stage === 'cleanup'
  const out: { store: string; part: number }[] = []
  for (const store of next.stores) {
    for (const part of stored(store.name)) {
      const entering = after.canMerge(nodeId, part, store) && !before.canMerge(nodeId, part, store)
      const left = cleaning && !after.canMerge(nodeId, part, store)
      if (entering || left) out.push({ store: store.name, part })
    }
  }
  return out
}
