import { type ConflictMode, type SiblingSet, type StoreDef, KvorumError, resolveSets, sameSet } from '@kvorum/core'
import type { Runtime } from './runtime.js'

/** Which replicas a read should repair, and how many it found behind only by sets already on their way. */
export interface RepairChoice {
  readonly repair: string[]
  readonly skipped: number
}

/**
 * The replicas whose reply differs from the merged set, less those behind
 * only by sets this client is sending them (their merges or hints bring
 * them) or that they acknowledged since answering. A plain function of the
 * replies and of what is known to be on its way.
 */
export function replicasToRepair(
  conflict: ConflictMode,
  replies: ReadonlyMap<string, SiblingSet>,
  merged: SiblingSet,
  known: (node: string) => SiblingSet[],
): RepairChoice {
  const repair: string[] = []
  let skipped = 0
  for (const [node, set] of replies) {
    if (sameSet(set, merged)) continue
    const coming = known(node)
    if (coming.length > 0) {
      const after = resolveSets(conflict, set, ...coming)
      if (sameSet(resolveSets(conflict, after, merged), after)) {
        skipped++
        continue
      }
    }
    repair.push(node)
  }
  return { repair, skipped }
}

/** Send the merged set to every replica whose reply was behind it. */
export async function readRepair(
  rt: Runtime,
  store: StoreDef,
  key: Uint8Array,
  primaries: number,
  replies: ReadonlyMap<string, SiblingSet>,
  deadline: number,
): Promise<void> {
  // One reply from a one-replica store has nothing to compare with.
  if (replies.size < 2 && replies.size === primaries) return
  const merged = resolveSets(store.conflict, ...replies.values())
  const { repair, skipped } = replicasToRepair(store.conflict, replies, merged, (node) => rt.inFlight.known(node, store.name, key))
  rt.metrics.readRepairsSkipped += skipped
  if (repair.length === 0) return
  rt.metrics.readRepairs += repair.length
  rt.events.emit('readRepair', () => ({ store: store.name, key: key.slice(), nodes: [...repair], siblings: merged.length }))
  const until = Math.max(deadline, rt.time.monotonicMs() + rt.settings.requestTimeoutMs)
  // A replica that cannot take the repair now (a KvorumError: down, timed out, refused) gets it
  // from the next read or from anti-entropy; anything else is a bug and reaches the background-error channel.
  await Promise.all(
    repair.map((node) =>
      rt.nodes
        .batcher(node)
        .mergePut(store.name, { key, siblings: merged }, until, rt.view.cluster.version)
        .catch((e) => {
          if (!(e instanceof KvorumError)) throw e
        }),
    ),
  )
}
