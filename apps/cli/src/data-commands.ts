import { type BatchOptions, type CallOptions, type GetResult, type Kvorum, type Store, CONNECT_DEFAULTS, connect } from '@kvorum/client'
import { CLUSTER_LIMITS, InvalidInputError, KvorumError } from '@kvorum/core'
import { ACCESS_FLAGS, UsageError, accessFlags, durationFlag, intFlag, parse, seedsFlag } from './args.js'
import { type CliCodec, codecFlag, showValue, valueBytes } from './values.js'

/** Exit code of a get that found nothing, when --fail-missing asks for one. */
export const EXIT_MISSING = 3

/** Largest quorum a flag may name; the SDK checks it against the store's n. */
const MAX_QUORUM = 64

export const CONNECTION = {
  seeds: { type: 'string' },
  ...ACCESS_FLAGS,
  timeout: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const

const GET_FLAGS = {
  ...CONNECTION,
  codec: { type: 'string' },
  raw: { type: 'boolean', default: false },
  compact: { type: 'boolean', default: false },
  'fail-missing': { type: 'boolean', default: false },
  r: { type: 'string' },
  pr: { type: 'string' },
} as const

const PUT_FLAGS = {
  ...CONNECTION,
  codec: { type: 'string' },
  context: { type: 'string' },
  literal: { type: 'boolean', default: false },
  'ttl-ms': { type: 'string' },
  w: { type: 'string' },
  pw: { type: 'string' },
} as const

const DELETE_FLAGS = {
  ...CONNECTION,
  context: { type: 'string' },
  r: { type: 'string' },
  w: { type: 'string' },
  pr: { type: 'string' },
  pw: { type: 'string' },
} as const

type Flags = Partial<Record<'seeds' | keyof typeof ACCESS_FLAGS | 'timeout' | 'r' | 'w' | 'pr' | 'pw', string | undefined>>

/** The per-call options the flags name; absent flags leave the store's defaults. */
function callOptions(values: Flags): CallOptions {
  const quorum = (name: 'r' | 'w' | 'pr' | 'pw', min: number) => {
    const v = values[name]
    return v === undefined ? {} : { [name]: intFlag(v, name, min, MAX_QUORUM, min) }
  }
  const timeoutMs = durationFlag(values.timeout, 'timeout')
  return { ...quorum('r', 1), ...quorum('w', 1), ...quorum('pr', 0), ...quorum('pw', 0), ...(timeoutMs ? { timeoutMs } : {}) }
}

function positionals(command: string, got: string[], names: readonly string[]): string[] {
  if (got.length === names.length) return got
  const shape = names.map((n) => `<${n}>`).join(' ')
  const what =
    got.length < names.length
      ? `missing ${names
          .slice(got.length)
          .map((n) => `<${n}>`)
          .join(' ')}`
      : `unexpected argument ${got[names.length]}`
  throw new UsageError(`${what}: ${command} takes ${shape}`)
}

/**
 * Connect with the flags' seeds, token and timeout; a single request never outlasts the whole call.
 * `batch` overrides the per-node coalescing of data requests (a bulk command's larger batches).
 */
export async function open(values: Flags, call: CallOptions, batch?: BatchOptions): Promise<Kvorum> {
  const t = call.timeoutMs
  return connect({
    seeds: seedsFlag(values.seeds),
    ...accessFlags(values),
    ...(t ? { timeoutMs: t, requestTimeoutMs: Math.min(t, CONNECT_DEFAULTS.requestTimeoutMs) } : {}),
    ...(batch ? { batch } : {}),
  })
}

async function withStore<R>(values: Flags, call: CallOptions, name: string, run: (store: Store<Uint8Array>, kv: Kvorum) => Promise<R>): Promise<R> {
  const kv = await open(values, call)
  try {
    return await run(kv.store<Uint8Array>(name, { codec: 'bytes' }), kv)
  } finally {
    await kv.close()
  }
}

function note(text: string): void {
  process.stderr.write(`kvorum: ${text}\n`)
}

function printGet(
  key: string,
  res: GetResult<Uint8Array>,
  codec: CliCodec,
  values: { readonly json: boolean; readonly raw: boolean; readonly compact: boolean },
): void {
  const many = res.values.length > 1
  if (values.raw) {
    if (many) throw new InvalidInputError(`${key} holds ${res.values.length} siblings and --raw writes one value: read them with --json`)
    const only = res.values[0]
    if (only) process.stdout.write(only)
    else note('(not found)')
    process.stderr.write(`context: ${res.context || '(none)'}\n`)
    return
  }
  const shown = res.values.map((v, i) => showValue(v, codec, values.compact, many ? `value ${i + 1} of ${key}` : `the value of ${key}`))
  if (values.json) {
    console.log(JSON.stringify({ found: res.found, values: shown.map((s) => s.json), context: res.context, siblings: res.siblings }))
    return
  }
  if (!res.found) console.log('(not found)')
  if (many) console.log(`${res.values.length} siblings:`)
  for (const s of shown) {
    if (s.note) note(s.note)
    console.log(s.text)
  }
  console.log(`context: ${res.context || '(none)'}`)
}

async function get(argv: string[]): Promise<number> {
  const { values, positionals: args } = parse(argv, GET_FLAGS)
  const [storeName, key] = positionals('get', args, ['store', 'key']) as [string, string]
  const codec = codecFlag(values.codec)
  if (values.raw && values.json) throw new UsageError('--raw and --json print different things: pick one')
  if (values.compact && codec !== 'json') throw new UsageError('--compact applies to --codec json')
  const call = callOptions(values)
  const res = await withStore(values, call, storeName, (store) => store.get(key, call))
  printGet(key, res, codec, values)
  return !res.found && values['fail-missing'] ? EXIT_MISSING : 0
}

/**
 * Versions a blind put of `key` will be stored beside, read before it, or
 * undefined when unknown (the read failed; the put goes ahead). A store that
 * resolves by last-writer-wins keeps no siblings, so nothing is read there.
 */
async function versionsBefore(kv: Kvorum, store: Store<Uint8Array>, key: string, call: CallOptions): Promise<number | undefined> {
  if (kv.cluster.stores.find((s) => s.name === store.name)?.conflict === 'lww') return 0
  try {
    const res = await store.get(key, { ...(call.timeoutMs ? { timeoutMs: call.timeoutMs } : {}) })
    return res.found ? res.siblings : 0
  } catch (e) {
    if (e instanceof KvorumError) return undefined
    throw e
  }
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

async function put(argv: string[]): Promise<number> {
  const { values, positionals: args } = parse(argv, PUT_FLAGS)
  const [storeName, key, arg] = positionals('put', args, ['store', 'key', 'value']) as [string, string, string]
  const bytes = await valueBytes({ arg, literal: values.literal }, codecFlag(values.codec))
  const call = callOptions(values)
  const ttl = values['ttl-ms']
  const ttlMs = ttl === undefined ? undefined : intFlag(ttl, 'ttl-ms', 0, CLUSTER_LIMITS.maxTtlMs, 0)
  const context = values.context
  const { res, beside } = await withStore(values, call, storeName, async (store, kv) => {
    const beside = context === undefined ? await versionsBefore(kv, store, key, call) : undefined
    const res = await store.put(key, bytes, { ...call, ...(context === undefined ? {} : { context }), ...(ttlMs === undefined ? {} : { ttlMs }) })
    return { res, beside }
  })
  if (values.json) console.log(JSON.stringify({ ok: true, ...res, ...(beside === undefined ? {} : { storedBeside: beside }) }))
  else console.log(`ok\ncontext: ${res.context}`)
  if (beside) note(`stored beside ${plural(beside, 'version')}; pass --context to replace (kvorum get prints it)`)
  return 0
}

async function del(argv: string[]): Promise<number> {
  const { values, positionals: args } = parse(argv, DELETE_FLAGS)
  const [storeName, key] = positionals('delete', args, ['store', 'key']) as [string, string]
  const call = callOptions(values)
  const context = values.context
  const res = await withStore(values, call, storeName, (store) => store.delete(key, { ...call, ...(context === undefined ? {} : { context }) }))
  console.log(values.json ? JSON.stringify({ ok: true, ...res }) : `ok\ncontext: ${res.context}`)
  return 0
}

/** get / put / delete one key from the command line. */
export function dataCommand(command: 'get' | 'put' | 'delete', argv: string[]): Promise<number> {
  if (command === 'get') return get(argv)
  if (command === 'put') return put(argv)
  return del(argv)
}
