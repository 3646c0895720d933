import { connect } from '@kvorum/client'
import { UsageError, parse, seedsFlag, tokenFlag } from './args.js'

export const DATA_HELP = `kvorum get <store> <key> --seeds URL [--token T] [--json]
kvorum put <store> <key> <value> --seeds URL [--context C] [--token T] [--json]
kvorum delete <store> <key> --seeds URL [--context C] [--token T] [--json]
  Values are UTF-8 text. A get prints every sibling and the context to pass to the next put.`

const FLAGS = {
  seeds: { type: 'string' },
  token: { type: 'string' },
  context: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const

/** get / put / delete one key from the command line. */
export async function dataCommand(command: 'get' | 'put' | 'delete', argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, FLAGS)
  const want = command === 'put' ? 3 : 2
  if (positionals.length !== want) throw new UsageError(`${command} takes ${want === 3 ? '<store> <key> <value>' : '<store> <key>'}`)
  const [storeName, key, value] = positionals as [string, string, string?]
  const kv = await connect({ seeds: seedsFlag(values.seeds), ...tokenFlag(values.token) })
  try {
    const store = kv.store<string>(storeName, { codec: 'utf8' })
    const ctx = values.context !== undefined ? { context: values.context } : {}
    if (command === 'get') {
      const res = await store.get(key)
      if (values.json) console.log(JSON.stringify(res))
      else if (!res.found) console.log(`(not found)\ncontext: ${res.context || '(none)'}`)
      else {
        if (res.values.length > 1) console.log(`${res.values.length} siblings:`)
        for (const v of res.values) console.log(v)
        console.log(`context: ${res.context}`)
      }
      return res.found ? 0 : 1
    }
    const res = command === 'put' ? await store.put(key, value as string, ctx) : await store.delete(key, ctx)
    console.log(values.json ? JSON.stringify({ ok: true, ...res }) : `ok\ncontext: ${res.context}`)
    return 0
  } finally {
    await kv.close()
  }
}
