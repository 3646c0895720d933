import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { UsageError } from '@kvorum/core'

/** Everything a node is started with, checked. */
export interface NodeOptions {
  readonly port: number
  readonly host: string
  readonly data: string
  readonly id: string
  readonly zone?: string
  readonly durability: 'normal' | 'full'
  /** The data token: every route but /health (and /metrics, when a metrics token is set) needs it. */
  readonly token?: string
  /** A token that lets a scraper read /metrics and nothing else. */
  readonly metricsToken?: string
  readonly logLevel: LogLevel
  readonly maxHints: number
  readonly maxHintAgeS: number
  /** The database's quota, MiB: past it writes that add data get KV_DISK_FULL. */
  readonly maxDbMib?: number
}

/** What the command line asks for: run a node, or print the help or the version. */
export type Command = { readonly run: NodeOptions } | { readonly help: true } | { readonly version: true }

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
/** A pino level name. */
export type LogLevel = (typeof LOG_LEVELS)[number]

/** Most hinted keys per target a node may be told to keep. */
const MAX_HINTS_LIMIT = 100_000_000
/** Longest hint age a node may be told to keep, s (ten years). */
const MAX_HINT_AGE_S_LIMIT = 10 * 365 * 24 * 3600
/** Largest database quota a node may be given, MiB (16 TiB). */
const MAX_DB_MIB_LIMIT = 16 * 1024 * 1024
/** Longest token, characters. */
const MAX_TOKEN_LENGTH = 1024
/** Node ids and zones, as the cluster definition takes them. */
const NAME = /^[A-Za-z0-9_.-]{1,64}$/

/** The environment variables kvorum-node reads. */
export const ENV = { token: 'KVORUM_NODE_TOKEN', metricsToken: 'KVORUM_NODE_METRICS_TOKEN' } as const

export const USAGE = `kvorum-node: a Kvorum storage node

usage: kvorum-node [flags]

  --port N                  port to listen on, 0..65535 (default 7070; 0 lets the system pick)
  --host H                  address to bind (default 127.0.0.1)
  --data DIR                directory of the SQLite database, created if missing (default ./data/node-<port>)
  --id ID                   node id in the cluster definition, 1..64 of A-Z a-z 0-9 _ . - (default node-<port>)
  --zone Z                  failure domain this node is in, told in /health; 'kvorum cluster rebalance --add' takes it from there (default none)
  --durability MODE         normal (default: survives a process crash) or full (fsync every group commit)
  --token T                 require "Authorization: Bearer T" on every route but /health (default none: open)
  --token-file F            read the token from file F instead (surrounding whitespace is dropped)
  --metrics-token T         a second token, accepted on GET /metrics only (the data token is accepted there too);
                            with it set, /metrics needs one of the two even when no data token is set (default none)
  --metrics-token-file F    read the metrics token from file F instead
  --log-level L             fatal, error, warn, info (default), debug (adds one access log line per request) or trace
  --max-hints N             hinted keys kept per target node before new hints are refused, 0..${MAX_HINTS_LIMIT} (default 100000)
  --max-hint-age-s S        hints older than this are dropped and left to anti-entropy, 1..${MAX_HINT_AGE_S_LIMIT} (default 604800, 7 days)
  --max-db-mib N            quota of the database, 1..${MAX_DB_MIB_LIMIT} MiB: past it, writes that add data are refused with
                            KV_DISK_FULL while reads, deletes and hint delivery go on (default none: the disk's size)
  --version                 print the version and exit
  -h, --help                print this help and exit

environment:
  ${ENV.token}         the token, when neither --token nor --token-file is given
  ${ENV.metricsToken} the metrics token, when neither --metrics-token nor --metrics-token-file is given

routes: GET /health (liveness), GET /health?ready=1 (readiness: 503 KV_NO_CLUSTER until 'kvorum cluster init'),
  GET /metrics (Prometheus), and the node protocol under /v1. Logs are JSON lines on stdout.

exit codes: 0 stopped by SIGTERM or SIGINT; 1 could not start (KV_LISTEN_FAILED, KV_DATA_DIR, KV_DATA_FORMAT);
  2 a wrong flag (KV_USAGE). Startup errors are one line on stderr: kvorum-node: CODE: message`

/** A whole decimal integer in [min, max]: `Number()` alone would take '', ' 7', '0x10' and '1e3'. */
function integer(flag: string, text: string, min: number, max: number): number {
  const value = /^\d{1,15}$/.test(text) ? Number(text) : Number.NaN
  if (!(value >= min && value <= max)) throw new UsageError(`--${flag} must be a whole number in ${min}..${max}, got ${JSON.stringify(text)}`)
  return value
}

function name(flag: string, text: string): string {
  if (!NAME.test(text)) throw new UsageError(`--${flag} must be 1..64 of A-Z a-z 0-9 _ . -, got ${JSON.stringify(text)}`)
  return text
}

/** A token as a header carries it: visible ASCII, no spaces. */
function token(what: string, text: string): string {
  if (text.length === 0 || text.length > MAX_TOKEN_LENGTH || !/^[\x21-\x7e]+$/.test(text))
    throw new UsageError(`${what} must be 1..${MAX_TOKEN_LENGTH} visible ASCII characters without spaces`)
  return text
}

/** One token from its flag, its file flag, or its environment variable, in that order; two flags at once are a mistake. */
function tokenFrom(flag: string, value: string | undefined, file: string | undefined, envName: string, env: NodeJS.ProcessEnv): string | undefined {
  if (value !== undefined && file !== undefined) throw new UsageError(`give --${flag} or --${flag}-file, not both`)
  if (value !== undefined) return token(`--${flag}`, value)
  if (file !== undefined) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message
      throw new UsageError(`cannot read --${flag}-file ${file}: ${why}`)
    }
    return token(`the token in ${file}`, text.trim())
  }
  const fromEnv = env[envName]
  return fromEnv === undefined || fromEnv === '' ? undefined : token(envName, fromEnv)
}

/** Every flag kvorum-node takes, as parseArgs reads them (USAGE documents each one). */
export const FLAGS = {
  port: { type: 'string', default: '7070' },
  host: { type: 'string', default: '127.0.0.1' },
  data: { type: 'string' },
  id: { type: 'string' },
  zone: { type: 'string' },
  durability: { type: 'string', default: 'normal' },
  token: { type: 'string' },
  'token-file': { type: 'string' },
  'metrics-token': { type: 'string' },
  'metrics-token-file': { type: 'string' },
  'log-level': { type: 'string', default: 'info' },
  'max-hints': { type: 'string', default: '100000' },
  'max-hint-age-s': { type: 'string', default: '604800' },
  'max-db-mib': { type: 'string' },
  version: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const

function flagValues(argv: readonly string[]) {
  try {
    return parseArgs({ args: [...argv], options: FLAGS }).values
  } catch (e) {
    // parseArgs explains unknown flags, missing values and stray arguments in one sentence.
    throw new UsageError((e as Error).message.split('\n')[0] ?? 'bad command line')
  }
}

/** The command line and environment, checked; throws UsageError (one line) on any mistake. */
export function parseCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Command {
  const values = flagValues(argv)
  if (values.help) return { help: true }
  if (values.version) return { version: true }
  const port = integer('port', values.port, 0, 65535)
  if (values.host.length === 0) throw new UsageError('--host must not be empty')
  if (values.durability !== 'normal' && values.durability !== 'full')
    throw new UsageError(`--durability must be normal or full, got ${JSON.stringify(values.durability)}`)
  const logLevel = LOG_LEVELS.find((l) => l === values['log-level'])
  if (!logLevel) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(values['log-level'])}`)
  if (values.data?.length === 0) throw new UsageError('--data must not be empty')
  const dataToken = tokenFrom('token', values.token, values['token-file'], ENV.token, env)
  const metricsToken = tokenFrom('metrics-token', values['metrics-token'], values['metrics-token-file'], ENV.metricsToken, env)
  return {
    run: {
      port,
      host: values.host,
      data: values.data ?? join('data', `node-${port}`),
      id: values.id === undefined ? `node-${port}` : name('id', values.id),
      ...(values.zone === undefined ? {} : { zone: name('zone', values.zone) }),
      durability: values.durability,
      ...(dataToken === undefined ? {} : { token: dataToken }),
      ...(metricsToken === undefined ? {} : { metricsToken }),
      logLevel,
      maxHints: integer('max-hints', values['max-hints'], 0, MAX_HINTS_LIMIT),
      maxHintAgeS: integer('max-hint-age-s', values['max-hint-age-s'], 1, MAX_HINT_AGE_S_LIMIT),
      ...(values['max-db-mib'] === undefined ? {} : { maxDbMib: integer('max-db-mib', values['max-db-mib'], 1, MAX_DB_MIB_LIMIT) }),
    },
  }
}
