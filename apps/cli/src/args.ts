import { type ParseArgsConfig, parseArgs } from 'node:util'
import { UsageError } from '@kvorum/core'
import { didYouMean } from './suggest.js'

export { UsageError }

type Options = NonNullable<ParseArgsConfig['options']>

/** Longest --timeout a call may be given, ms: ten minutes. */
const MAX_TIMEOUT_MS = 600_000

/** Refuse flags the command does not know, naming the nearest one it does. */
function checkFlags(argv: string[], options: Options): void {
  const { tokens } = parseArgs({ args: argv, options, allowPositionals: true, strict: false, tokens: true })
  const known = Object.keys(options)
  for (const t of tokens) {
    if (t.kind !== 'option') continue
    const spec = options[t.name]
    if (!spec) {
      if (/^-\d/.test(t.rawName)) throw new UsageError(`unknown flag ${t.rawName} (a value starting with - goes after --, e.g. -- ${t.rawName})`)
      throw new UsageError(`unknown flag ${t.rawName}${didYouMean(t.name, known, (k) => `--${k}`)}`)
    }
    if (spec.type === 'string' && t.value === undefined) throw new UsageError(`--${t.name} needs a value`)
    if (spec.type === 'boolean' && t.inlineValue) throw new UsageError(`--${t.name} takes no value`)
  }
}

/** parseArgs with our error type and "did you mean" for an unknown flag; positional arguments allowed. */
export function parse<S extends Options>(
  argv: string[],
  options: S,
): ReturnType<typeof parseArgs<{ args: string[]; options: S; allowPositionals: true; strict: true }>> {
  checkFlags(argv, options)
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true })
  } catch (e) {
    throw new UsageError(((e as Error).message.split('\n')[0] as string).trim())
  }
}

/** An integer flag within bounds. */
export function intFlag(value: string | undefined, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer ${min}..${max}, got ${value}`)
  return n
}

/** A duration flag: `1500` or `1500ms`, `2s`, `1m`; undefined when absent. At most ten minutes. */
export function durationFlag(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.trim())
  const scale = { ms: 1, s: 1000, m: 60_000 }[(m?.[2] ?? 'ms') as 'ms' | 's' | 'm']
  const ms = m ? Math.round(Number(m[1]) * scale) : Number.NaN
  if (!(ms >= 1 && ms <= MAX_TIMEOUT_MS)) throw new UsageError(`--${name} takes a duration of 1ms..10m like 500ms, 2s or 1500 (ms), got ${value}`)
  return ms
}

/** One seed as a URL: `host:port` (or `host`) gets `http://`; anything else must be an http(s) URL. */
export function seedUrl(spec: string): string {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(spec) ? spec : `http://${spec}`
  let url: URL | undefined
  try {
    url = new URL(text)
  } catch {
    url = undefined
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '' || url.search || url.hash)
    throw new UsageError(`seed ${spec} is not host:port or an http(s) URL, e.g. 127.0.0.1:7070`)
  return text.replace(/\/+$/, '')
}

/** A comma-separated list of nodes (--seeds, or `flag`), each through {@link seedUrl}. */
export function seedList(raw: string, flag = 'seeds'): string[] {
  const seeds = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(seedUrl)
  if (seeds.length === 0) throw new UsageError(`--${flag} names no node: give host:port[,host:port...]`)
  return seeds
}

/** Seed URLs from --seeds (comma-separated host:port or URLs) or KVORUM_SEEDS. */
export function seedsFlag(value: string | undefined): string[] {
  const raw = value ?? process.env.KVORUM_SEEDS
  if (!raw) throw new UsageError('--seeds host:port[,host:port...] is required (or set KVORUM_SEEDS)')
  return seedList(raw)
}

/** Token from --token or KVORUM_TOKEN. */
export function tokenFlag(value: string | undefined): { token?: string } {
  const token = value ?? process.env.KVORUM_TOKEN
  return token ? { token } : {}
}
