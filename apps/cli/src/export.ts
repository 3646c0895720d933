import { createWriteStream } from 'node:fs'
import { rename, rm } from 'node:fs/promises'
import type { Writable } from 'node:stream'
import { UsageError, durationFlag, parse } from './args.js'
import { CONNECTION, open } from './data-commands.js'
import { EXPORT_FORMAT, ExportWriter } from './export-format.js'
import { CONNECTION_HELP, ENV_HELP } from './help.js'
import { Progress } from './progress.js'

export const EXPORT_HELP = `kvorum export <store> [flags]
  Write every key of the store with its whole sibling set (values, dots, causal contexts, timestamps,
  tombstones) to a file in the Kvorum export format ${EXPORT_FORMAT} (length-prefixed binary with a header
  and a SHA-256 checksum; docs/operations.md describes it), with a progress display on stderr.
  Partitions are read one after another from every primary each and merged (a tombstone may be on
  its coordinating primary alone, its hint not yet delivered), so a primary that does not answer
  fails the export. Not a point-in-time snapshot: writes during the export may or may not be in it.
  kvorum import reads it.

Flags:
  --out FILE              write to FILE (via FILE.partial, renamed when complete); default stdout,
                            which must not be a terminal
  --json                  print a summary {"store", "keys", "bytes", "ms"} on stdout (needs --out)
${CONNECTION_HELP}

Exit codes: 0 exported, 1 the export failed (no FILE is left behind), 2 usage mistake.

${ENV_HELP}`

const FLAGS = { ...CONNECTION, out: { type: 'string' } } as const

function finished(stream: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.once('error', reject)
    stream.end(() => resolve())
  })
}

/** `kvorum export STORE [--out FILE]`. */
export async function exportCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, FLAGS)
  const [storeName, extra] = positionals
  if (storeName === undefined) throw new UsageError('missing <store>: export takes <store>')
  if (extra !== undefined) throw new UsageError(`unexpected argument ${extra}: export takes <store>`)
  if (values.out === undefined && process.stdout.isTTY) throw new UsageError('an export is binary: pass --out FILE or redirect stdout')
  if (values.out === undefined && values.json) throw new UsageError('--json prints on stdout, where the export goes: pass --out FILE')
  const timeoutMs = durationFlag(values.timeout, 'timeout')
  const kv = await open(values, timeoutMs ? { timeoutMs } : {})
  const partial = values.out === undefined ? undefined : `${values.out}.partial`
  const out = partial === undefined ? process.stdout : createWriteStream(partial)
  const started = Date.now()
  try {
    const def = kv.cluster.stores.find((s) => s.name === storeName)
    const writer = new ExportWriter(out)
    await writer.start({ format: EXPORT_FORMAT, store: storeName, conflict: def?.conflict ?? 'siblings', startedAt: new Date(started).toISOString() })
    const bar = new Progress('export')
    const listing = kv.store(storeName).versions({
      onProgress: (p) => bar.update(p.partitionsDone, p.partitionsTotal, `partitions, ${p.items} keys, ${(writer.bytes / 1048576).toFixed(1)} MiB`),
    })
    for await (const item of listing) await writer.add(item)
    const keys = await writer.finish()
    if (out !== process.stdout) await finished(out)
    if (partial !== undefined && values.out !== undefined) await rename(partial, values.out)
    bar.done()
    const ms = Date.now() - started
    if (values.json) console.log(JSON.stringify({ store: storeName, keys, bytes: writer.bytes, ms }))
    else process.stderr.write(`kvorum: exported ${keys} keys of store ${storeName} (${writer.bytes} bytes) in ${(ms / 1000).toFixed(1)} s\n`)
    return 0
  } catch (e) {
    if (partial !== undefined) {
      out.destroy()
      await rm(partial, { force: true })
    }
    throw e
  } finally {
    await kv.close()
  }
}
