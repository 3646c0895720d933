import { open as openFile } from 'node:fs/promises'
import { BATCH_DEFAULTS, type BatchOptions } from '@kvorum/client'
import { InvalidInputError, type KeySet, type KvorumError, LIMITS } from '@kvorum/core'
import type { ExportHeader } from './export-format.js'
import { UsageError, durationFlag, parse } from './args.js'
import { CONNECTION, open } from './data-commands.js'
import { readExport } from './export-format.js'
import { CONNECTION_HELP, ENV_HELP } from './help.js'
import { Progress } from './progress.js'

export const IMPORT_HELP = `kvorum import <file> [flags]
  Merge an export (kvorum export) into a cluster, the same or another: each key's sibling set goes to
  every replica of the key and is merged as replicas merge (union, less what a version's context
  covers), with the dots and clocks it was exported with. So importing twice changes nothing, a key
  that moved on since keeps both histories as siblings where they diverged, and a key deleted after
  the export stays deleted. The whole file is checked first (format, frames, key count, checksum):
  a damaged or truncated file is refused before anything is sent.

Flags:
  --store S               import into store S; default the store the export came from
  --past-grace            import an export that started longer ago than the store's tombstoneGraceMs
                            less 5 min for clock skew (refused without it: keys deleted since, whose
                            tombstones were reaped, would come back; into an empty cluster that is the
                            export's state, so pass it)
  --json                  print a summary {"store", "keys", "failed", "ms"}
${CONNECTION_HELP} (here: of each frame's merges, default 30s)

Exit codes: 0 every key imported, 1 the file was refused or some keys failed (too few replicas took
them: import again once they answer; it is idempotent), 2 usage mistake.

${ENV_HELP}`

const FLAGS = { ...CONNECTION, store: { type: 'string' }, 'past-grace': { type: 'boolean', default: false } } as const

/** Deadline of one frame's merges when --timeout is not given, ms. */
const FRAME_TIMEOUT_MS = 30_000
/**
 * Frames whose merges are in flight at once: the next frame is read while
 * earlier ones are sent. 8 of 512 keys keep two full batches queued for each
 * node (IMPORT_BATCH), so a node never waits for the next while one answers.
 */
const FRAMES_IN_FLIGHT = 8
/**
 * Merges per node request: the protocol's most, not the SDK's 256. A node
 * commits each request in one transaction, and a bigger one writes the pages
 * its keys share once: 100,000 imported keys cost each node about a tenth
 * less CPU (docs/operations.md). Four times the items get four times the
 * SDK's request timeout: a loaded node that takes longer is waited for
 * rather than sent the same merges again (a node that does not answer at all
 * still costs one timeout per 1,024 keys, as 1 s per 256 did). Each request
 * still ends by its frame's deadline (--timeout).
 */
const IMPORT_BATCH: BatchOptions = {
  maxBatchItems: LIMITS.maxBatchItems,
  requestTimeoutMs: (LIMITS.maxBatchItems / BATCH_DEFAULTS.maxBatchItems) * BATCH_DEFAULTS.requestTimeoutMs,
}
/** Failures named in the summary at most. */
const SHOWN_FAILURES = 5

async function openReadable(path: string) {
  try {
    return await openFile(path, 'r')
  } catch (e) {
    throw new InvalidInputError(`cannot read ${path}: ${(e as Error).message}`)
  }
}

/** Read the whole file once without sending anything: its header and key count, or the reason it is refused. */
async function check(path: string): Promise<{ header: ExportHeader; keys: number }> {
  const file = await openReadable(path)
  try {
    let header: ExportHeader | undefined
    let keys = 0
    for await (const part of readExport(file, path)) {
      if (Array.isArray(part)) keys += part.length
      else header = part
    }
    if (!header) throw new Error('assertion failed: an export that reads through has a header')
    return { header, keys }
  } finally {
    await file.close()
  }
}

/**
 * How much the clocks involved may disagree, ms: startedAt is the exporting
 * machine's, the age is taken on this one, and the nodes reap by theirs.
 */
const CLOCK_SKEW_MARGIN_MS = 5 * 60_000

/**
 * Refuse an export older than the store's tombstone grace less the clock
 * margin: a key deleted after it may have had its tombstone reaped, and
 * nothing would then keep the exported version out.
 */
function refuseReaped(header: ExportHeader, store: string, graceMs: number): void {
  const ageMs = Date.now() - Date.parse(header.startedAt)
  if (!(ageMs > graceMs - CLOCK_SKEW_MARGIN_MS)) return
  const hours = (ms: number) => `${(ms / 3_600_000).toFixed(1)} h`
  throw new InvalidInputError(
    `the export started ${hours(ageMs)} ago, longer than store ${store}'s tombstoneGraceMs (${hours(graceMs)}) less ${CLOCK_SKEW_MARGIN_MS / 60_000} min for clock skew: keys deleted since whose tombstones were reaped would come back; nothing was imported (pass --past-grace to import it anyway, e.g. into an empty cluster)`,
  )
}

/** `kvorum import FILE [--store S]`. */
export async function importCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, FLAGS)
  const [path, extra] = positionals
  if (path === undefined) throw new UsageError('missing <file>: import takes <file>')
  if (extra !== undefined) throw new UsageError(`unexpected argument ${extra}: import takes <file>`)
  const timeoutMs = durationFlag(values.timeout, 'timeout') ?? FRAME_TIMEOUT_MS
  const started = Date.now()
  const { header, keys: total } = await check(path)
  const storeName = values.store ?? header.store
  const kv = await open(values, { timeoutMs }, IMPORT_BATCH)
  const file = await openReadable(path)
  try {
    const def = kv.cluster.stores.find((s) => s.name === storeName)
    if (def && !values['past-grace']) refuseReaped(header, def.name, def.tombstoneGraceMs)
    const store = kv.store(storeName)
    const bar = new Progress('import')
    let done = 0
    let failed = 0
    const failures: KvorumError[] = []
    const inFlight: Promise<void>[] = []
    const send = async (part: KeySet[]) => {
      const results = await store.restore(part, { timeoutMs })
      for (const r of results) {
        if (r.ok) continue
        failed++
        if (failures.length < SHOWN_FAILURES) failures.push(r.error)
      }
      done += part.length
      bar.update(done, total, `keys, ${failed} failed`)
    }
    try {
      for await (const part of readExport(file, path)) {
        if (!Array.isArray(part)) continue
        if (inFlight.length >= FRAMES_IN_FLIGHT) await inFlight.shift()
        inFlight.push(send(part))
      }
      await Promise.all(inFlight)
    } finally {
      // On a failure, let the frames still in flight end before the client closes under them.
      await Promise.allSettled(inFlight)
    }
    bar.done()
    const ms = Date.now() - started
    if (values.json) console.log(JSON.stringify({ store: storeName, keys: done, failed, ms }))
    else process.stderr.write(`kvorum: imported ${done - failed} of ${done} keys into store ${storeName} in ${(ms / 1000).toFixed(1)} s\n`)
    for (const e of failures) process.stderr.write(`kvorum: ${e.code}: ${e.message}\n`)
    if (failed > failures.length) process.stderr.write(`kvorum: ... and ${failed - failures.length} more; import again once the replicas answer\n`)
    return failed > 0 ? 1 : 0
  } finally {
    await file.close()
    await kv.close()
  }
}
