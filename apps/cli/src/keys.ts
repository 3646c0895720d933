import type { ListProgress } from '@kvorum/client'
import { UsageError, durationFlag, intFlag, parse } from './args.js'
import { CONNECTION, open } from './data-commands.js'
import { CONNECTION_HELP, ENV_HELP } from './help.js'
import { Progress } from './progress.js'

export const KEYS_HELP = `kvorum keys <store> [flags]
  Print every live key of the store, one a line (as UTF-8 text), partition by partition. Each
  partition is read from n - w + 1 replicas and merged, so a key a write acknowledged is not missed;
  deleted keys are left out. Not a snapshot: keys written or deleted while it runs may or may not show.
  With --limit it stops after N keys and prints on stderr the command that goes on from there.

Flags:
  --prefix P              only keys starting with P (every partition is still read)
  --limit N               at most N keys, then the cursor to resume with
  --cursor C              go on where an earlier --limit run stopped
${CONNECTION_HELP}

Exit codes: 0 listed, 1 the listing failed (too few replicas of a partition answered), 2 usage mistake.

${ENV_HELP}`

export const COUNT_HELP = `kvorum count <store> [flags]
  Count the live keys of the store (as kvorum keys lists them), with a progress display on stderr.
  Not a snapshot: a store being written to while it runs gives an approximate count.

Flags:
  --prefix P              only keys starting with P
  --json                  print {"store", "keys"}
${CONNECTION_HELP}

Exit codes: 0 counted, 1 the count failed (too few replicas of a partition answered), 2 usage mistake.

${ENV_HELP}`

const FLAGS = { ...CONNECTION, prefix: { type: 'string' }, limit: { type: 'string' }, cursor: { type: 'string' } } as const

function storeArg(command: string, args: string[]): string {
  const [store, extra] = args
  if (store === undefined) throw new UsageError(`missing <store>: ${command} takes <store>`)
  if (extra !== undefined) throw new UsageError(`unexpected argument ${extra}: ${command} takes <store>`)
  return store
}

function progressLine(bar: Progress | undefined) {
  return (p: ListProgress) => bar?.update(p.partitionsDone, p.partitionsTotal, `partitions, ${p.items} keys`)
}

/** `kvorum keys STORE` and `kvorum count STORE`. */
export async function keysCommand(command: 'keys' | 'count', argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, FLAGS)
  const storeName = storeArg(command, positionals)
  if (command === 'count' && (values.limit !== undefined || values.cursor !== undefined)) throw new UsageError('count takes no --limit or --cursor')
  const limit = values.limit === undefined ? undefined : intFlag(values.limit, 'limit', 1, Number.MAX_SAFE_INTEGER, 1)
  const timeoutMs = durationFlag(values.timeout, 'timeout')
  const kv = await open(values, timeoutMs ? { timeoutMs } : {})
  try {
    const store = kv.store(storeName)
    // keys prints to stdout: a bar on the same terminal would garble it, so it shows only when stdout goes elsewhere.
    const bar = command === 'count' || !process.stdout.isTTY ? new Progress(command) : undefined
    const listing = store.keys({
      ...(values.prefix === undefined ? {} : { prefix: values.prefix }),
      ...(limit === undefined ? {} : { limit }),
      ...(values.cursor === undefined ? {} : { cursor: values.cursor }),
      onProgress: progressLine(bar),
    })
    let count = 0
    let out = ''
    for await (const key of listing) {
      count++
      if (command === 'count') continue
      out += `${key}\n`
      if (out.length >= 64 * 1024) out = flush(out)
    }
    flush(out)
    bar?.done()
    if (command === 'count') console.log(values.json ? JSON.stringify({ store: storeName, keys: count }) : String(count))
    else if (listing.cursor !== undefined && limit !== undefined && count >= limit)
      process.stderr.write(`kvorum: stopped at --limit ${limit}; go on with: kvorum keys ${storeName} --limit ${limit} --cursor ${listing.cursor}\n`)
    return 0
  } finally {
    await kv.close()
  }
}

function flush(text: string): string {
  if (text) process.stdout.write(text)
  return ''
}
