import { type KeySet, KvorumError } from '@kvorum/core'
import type { Kvorum } from '@kvorum/client'
import { replicaPrints } from './checker.js'
import type { VirtualClock } from './clock.js'
import type { SimCluster } from './cluster.js'
import { CLIENT_TIMING, type Mutant, type SeedConfig, TOMBSTONE_GRACE_MS } from './config.js'
import type { Random } from '../support/random.js'
import type { Trace } from './trace.js'

/** An export a run took (`kvorum export`: the store's `versions()` from every primary), and when it started. */
export interface ExportTaken {
  /** The export's sets, in listing order. */
  readonly sets: readonly KeySet[]
  /** True virtual time the listing started (the file header's startedAt). */
  readonly startedAtMs: number
  /** Imports of it that every key acknowledged. */
  importedFully: number
}

/** When a seed exports, and how it imports that export back during the workload. */
export interface ImportPlan {
  /** Virtual time after the workload starts that the export begins, ms. */
  readonly exportAtMs: number
  /** Pause after the export (and after the first import) before each import, ms: one or two imports. */
  readonly pausesMs: readonly number[]
}

/** What the imports of a run did, for the summary and the final checks. */
export interface ImportLog {
  readonly exports: ExportTaken[]
  exportsFailed: number
  /** Exports that started while a membership change was moving partitions (the exporter's view). */
  exportsDuringMove: number
  imports: number
  /** Imports not sent because their export was too old (the CLI refuses them the same way). */
  refused: number
  keysImported: number
  keysFailed: number
  /** Exports of the run imported again at the end (imported fully before, no reap since). */
  importedAgain: number
}

/** An import log's counts, for a seed's result and the summary. */
export type ImportFigures = Omit<ImportLog, 'exports'> & { readonly exports: number }

export function importFigures(log: ImportLog): ImportFigures {
  return { ...log, exports: log.exports.length }
}

export function emptyImportLog(): ImportLog {
  return { exports: [], exportsFailed: 0, exportsDuringMove: 0, imports: 0, refused: 0, keysImported: 0, keysFailed: 0, importedAgain: 0 }
}

/**
 * The oldest export the simulation imports, ms since it started: the CLI
 * refuses an export older than the store's tombstone grace less a clock
 * margin, since a tombstone written after the export may be reaped after
 * that and nothing would keep the exported version out. Here the margin is
 * the import's own deadline plus the slowest message (a 400 ms spike) with
 * room to spare, so every merge lands before such a reap may run.
 */
const MAX_EXPORT_AGE_MS = TOMBSTONE_GRACE_MS - CLIENT_TIMING.timeoutMs - 500
/** Attempts at a whole export (a primary that does not answer fails it), and the pause between them, ms. */
const EXPORT_ATTEMPTS = 5
const EXPORT_PAUSE_MS = 300
/** Keys of the simulated store at most (a few carts and docs): an export past this is a harness bug. */
const MAX_EXPORT_SETS = 64

/** Draw a seed's import plan from its own stream: export early in the workload, import once or twice within the age limit. */
export function planImports(rng: Random, faultWindowMs: number): ImportPlan {
  const exportAtMs = rng.range(0, Math.max(1, Math.floor(faultWindowMs / 2)))
  const first = rng.range(0, MAX_EXPORT_AGE_MS / 2)
  const pausesMs = rng.chance(0.4) ? [first, rng.range(0, MAX_EXPORT_AGE_MS / 3)] : [first]
  return { exportAtMs, pausesMs }
}

/** What an export or import step needs: the run's clock, trace, log, and its planted bug. */
export interface ImportContext {
  readonly clock: VirtualClock
  readonly trace: Trace
  readonly log: ImportLog
  readonly mutant: Mutant | null
  readonly store: string
}

/** `kvorum export` in a few lines: every set of the store, or null after EXPORT_ATTEMPTS failed listings. */
export async function exportStore(kv: Kvorum, ctx: ImportContext, who: string): Promise<ExportTaken | null> {
  const store = kv.store<Uint8Array>(ctx.store)
  for (let attempt = 1; attempt <= EXPORT_ATTEMPTS; attempt++) {
    const startedAtMs = ctx.clock.now
    const stage = kv.cluster.move?.stage
    try {
      const sets: KeySet[] = []
      for await (const set of store.versions()) {
        if (sets.length >= MAX_EXPORT_SETS) throw new Error(`assertion failed: the simulated store has more than ${MAX_EXPORT_SETS} keys`)
        sets.push(set)
      }
      ctx.trace.event(`${who} exported ${sets.length} keys (started at ${startedAtMs} ms${stage ? `, during ${stage}` : ''})`)
      if (stage === 'write-both' || stage === 'read-new') ctx.log.exportsDuringMove++
      return { sets, startedAtMs, importedFully: 0 }
    } catch (e) {
      if (!(e instanceof KvorumError)) throw e
      ctx.trace.event(`${who} export attempt ${attempt} failed: ${e.code}`)
      await ctx.clock.sleep(EXPORT_PAUSE_MS)
    }
  }
  ctx.log.exportsFailed++
  return null
}

/**
 * The planted import bug: each exported value written over what the
 * replicas hold now (read the key, put the value with that context) instead
 * of merging the sets, as a naive restore tool would.
 */
async function overwrite(kv: Kvorum, ctx: ImportContext, sets: readonly KeySet[]): Promise<boolean[]> {
  const store = kv.store<Uint8Array>(ctx.store)
  const out: boolean[] = []
  for (const set of sets) {
    const live = set.siblings.find((v) => v.value !== null)
    try {
      if (live?.value) await store.put(set.key, live.value, { context: (await store.get(set.key)).context })
      out.push(true)
    } catch (e) {
      if (!(e instanceof KvorumError)) throw e
      out.push(false)
    }
  }
  return out
}

/** `kvorum import` of an export: refused when it is too old (unless `pastGrace`, as the CLI's flag), else every set merged into its key's replicas with `store.restore`. */
export async function importExport(kv: Kvorum, ctx: ImportContext, taken: ExportTaken, who: string, pastGrace = false): Promise<void> {
  const ageMs = ctx.clock.now - taken.startedAtMs
  if (ageMs > MAX_EXPORT_AGE_MS && !pastGrace) {
    ctx.log.refused++
    ctx.trace.event(`${who} refused an export ${ageMs} ms old`)
    return
  }
  ctx.log.imports++
  let oks: boolean[]
  try {
    oks =
      ctx.mutant === 'overwrite-import' ? await overwrite(kv, ctx, taken.sets) : (await kv.store<Uint8Array>(ctx.store).restore(taken.sets)).map((r) => r.ok)
  } catch (e) {
    if (!(e instanceof KvorumError)) throw e
    oks = taken.sets.map(() => false)
  }
  const failed = oks.filter((ok) => !ok).length
  ctx.log.keysImported += oks.length - failed
  ctx.log.keysFailed += failed
  if (failed === 0) taken.importedFully++
  ctx.trace.event(`${who} imported an export ${ageMs} ms old: ${oks.length - failed} keys, ${failed} failed`)
}

/** A client through the faulty network, or null (counted as a failed export) when it cannot bootstrap. */
async function reach(connect: (name: string) => Promise<Kvorum>, ctx: ImportContext, name: string): Promise<Kvorum | null> {
  try {
    return await connect(name)
  } catch (e) {
    if (!(e instanceof KvorumError)) throw e
    ctx.log.exportsFailed++
    ctx.trace.event(`${name} could not connect: ${e.code}`)
    return null
  }
}

/**
 * The import race of a seed, beside the workload and its faults: one client
 * exports the store, another imports that export once or twice while the
 * workers go on writing and deleting (so the export may hold versions that
 * were deleted or overwritten since). Clients connect through the faulty network.
 */
export async function raceImports(plan: ImportPlan, ctx: ImportContext, connect: (name: string) => Promise<Kvorum>): Promise<void> {
  await ctx.clock.sleep(plan.exportAtMs)
  const exporter = await reach(connect, ctx, 'x1')
  if (!exporter) return
  let taken: ExportTaken | null
  try {
    taken = await exportStore(exporter, ctx, 'x1')
  } finally {
    await exporter.close(100)
  }
  if (!taken) return
  ctx.log.exports.push(taken)
  const importer = await reach(connect, ctx, 'x2')
  if (!importer) return
  try {
    for (const pauseMs of plan.pausesMs) {
      await ctx.clock.sleep(pauseMs)
      await importExport(importer, ctx, taken, 'x2')
    }
  } finally {
    await importer.close(100)
  }
}

/**
 * Importing again changes nothing (checked after the final repair, on a
 * healed network): a fresh export of the final state, and every export of
 * the run that was imported fully and that no reap has followed (a reap
 * since would let its deleted versions back: the age limit's reason), are
 * imported once more, past the age limit; every replica of every key must
 * then hold exactly what it held (under skew, `goneAtMs` as in `check`: a
 * node that reaped an expired set takes it back as it was, still absent).
 * Returns the keys that changed, as failures.
 */
export async function importAgain(cluster: SimCluster, kv: Kvorum, config: SeedConfig, ctx: ImportContext, goneAtMs?: number): Promise<string[]> {
  const before = await replicaPrints(cluster, kv, config, ctx.trace, goneAtMs)
  const fresh = await exportStore(kv, ctx, 'checker')
  if (!fresh) throw new Error('assertion failed: the checker exports on a healed network')
  const again = [fresh, ...ctx.log.exports.filter((e) => e.importedFully > 0 && e.startedAtMs > cluster.lastReapAtMs)]
  const log = emptyImportLog()
  for (const taken of again) await importExport(kv, { ...ctx, log }, taken, 'checker', true)
  const out: string[] = []
  if (log.keysFailed > 0) out.push(`import again failed: ${log.keysFailed} keys on a healed network`)
  const after = await replicaPrints(cluster, kv, config, ctx.trace, goneAtMs)
  for (const [key, print] of before) {
    if (after.get(key) === print) continue
    out.push(`import changed replicas: ${key}`)
    ctx.trace.event(`import again changed ${key}: ${print} → ${after.get(key)}`)
  }
  ctx.log.importedAgain += again.length - 1
  ctx.trace.event(`imported ${again.length} exports again (${again.length - 1} of the run's)`)
  return out
}
