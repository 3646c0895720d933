import { readFileSync } from 'node:fs'
import { type ParseArgsConfig, parseArgs } from 'node:util'
import type { TlsOptions } from '@kvorum/client'
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

/** The credential and TLS flags of every command that talks to a cluster (CONNECTION_HELP in help.ts documents them). */
export const ACCESS_FLAGS = {
  token: { type: 'string' },
  'token-file': { type: 'string' },
  'admin-token': { type: 'string' },
  'admin-token-file': { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
} as const

/** What the access flags give: the credentials and TLS settings that connect and HttpTransport take. */
export interface ClusterAccess {
  readonly token?: string
  readonly adminToken?: string
  readonly tls?: TlsOptions
}

type AccessValues = Partial<Record<keyof typeof ACCESS_FLAGS, string | undefined>>

/** Largest token or PEM file read, bytes. */
const MAX_ACCESS_FILE_BYTES = 1024 * 1024

/** A file the access flags name, read now; a missing one is a usage mistake naming the flag. */
function accessFile(flag: string, path: string): string {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    throw new UsageError(
      `cannot read --${flag} ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (e as Error).message}`,
    )
  }
  if (text.length > MAX_ACCESS_FILE_BYTES) throw new UsageError(`--${flag} ${path} is over ${MAX_ACCESS_FILE_BYTES} bytes`)
  return text
}

/** One token: from its flag, its file flag, or its environment variables (the same two), in that order; a file holds one token. */
function tokenOf(values: AccessValues, flag: 'token' | 'admin-token', env: NodeJS.ProcessEnv): string | undefined {
  const name = flag === 'token' ? 'KVORUM_TOKEN' : 'KVORUM_ADMIN_TOKEN'
  const given = values[flag]
  const givenFile = values[`${flag}-file`]
  if (given !== undefined && givenFile !== undefined) throw new UsageError(`give --${flag} or --${flag}-file, not both`)
  if (given !== undefined) return given
  const file = givenFile ?? (env[name] ? undefined : env[`${name}_FILE`] || undefined)
  if (file === undefined) return env[name] || undefined
  const lines = accessFile(`${flag}-file`, file)
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
  if (lines.length !== 1) throw new UsageError(`--${flag}-file ${file} must hold one token (a client sends one), found ${lines.length}`)
  return lines[0]
}

/**
 * The credentials and TLS settings of a command: --token (the data
 * credential, or the one token of the simple mode) and --admin-token (sent on
 * admin routes and signing the definitions the command writes), each also as
 * a -file flag and as KVORUM_TOKEN / KVORUM_ADMIN_TOKEN (or their _FILE
 * variables); --tls-ca, --tls-cert, --tls-key (or KVORUM_TLS_CA, ...) are PEM files.
 */
export function accessFlags(values: AccessValues, env: NodeJS.ProcessEnv = process.env): ClusterAccess {
  const token = tokenOf(values, 'token', env)
  const adminToken = tokenOf(values, 'admin-token', env)
  const pem = (flag: 'tls-ca' | 'tls-cert' | 'tls-key') => {
    const path = values[flag] ?? (env[`KVORUM_${flag.toUpperCase().replace('-', '_')}`] || undefined)
    return path === undefined ? undefined : accessFile(flag, path)
  }
  const [ca, cert, key] = [pem('tls-ca'), pem('tls-cert'), pem('tls-key')]
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('--tls-cert and --tls-key go together')
  const tls = ca || cert ? { ...(ca ? { ca } : {}), ...(cert && key ? { cert, key } : {}) } : undefined
  return { ...(token ? { token } : {}), ...(adminToken ? { adminToken } : {}), ...(tls ? { tls } : {}) }
}
