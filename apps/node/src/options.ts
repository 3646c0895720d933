import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { UsageError } from '@kvorum/core'
import type { Secrets } from './credentials.js'
import { type Layer, argvLayer, configLayer, envLayer, envName, lookup, readSmall } from './layers.js'
import { secretsFrom } from './secrets.js'
import { MAX_DB_MIB_LIMIT, MAX_HINTS_LIMIT, MAX_HINT_AGE_S_LIMIT } from './setting-limits.js'

export { USAGE } from './usage.js'

/** The PEM files of a node that serves HTTPS. */
export interface TlsFiles {
  readonly cert: string
  readonly key: string
  /** When set, every client must present a certificate this CA signed. */
  readonly clientCa?: string
}

/** Everything a node is started with, checked. */
export interface NodeOptions {
  readonly port: number
  readonly host: string
  readonly data: string
  readonly id: string
  readonly zone?: string
  readonly durability: 'normal' | 'full'
  /** The secrets by role; all empty: every route is open. */
  readonly secrets: Secrets
  /** HTTPS instead of HTTP. Default none. */
  readonly tls?: TlsFiles
  readonly logLevel: LogLevel
  readonly maxHints: number
  readonly maxHintAgeS: number
  /** MiB of caches: half SQLite's page cache, half the cache of recently used keys. */
  readonly cacheMiB: number
  /** MiB of the database file SQLite maps into memory (0: none, reads copy through its page cache). */
  readonly mmapMiB: number
  /** The database's quota, MiB: past it writes that add data get KV_DISK_FULL. Default none. */
  readonly maxDbMib?: number
}

/** What the command line asks for: run a node, or print the help or the version. */
export type Command = { readonly run: NodeOptions } | { readonly help: true } | { readonly version: true }

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
/** A pino level name. */
export type LogLevel = (typeof LOG_LEVELS)[number]

/** Node ids and zones, as the cluster definition takes them. */
const NAME = /^[A-Za-z0-9_.-]{1,64}$/

/** The environment variables of the secrets kvorum-node reads (every flag has one: KVORUM_NODE_<FLAG>). */
export const ENV = {
  token: envName('token'),
  dataToken: envName('data-token'),
  adminToken: envName('admin-token'),
  metricsToken: envName('metrics-token'),
  config: envName('config'),
} as const

/** Every flag kvorum-node takes, as parseArgs reads them (USAGE documents each one). Defaults are applied after the environment and the config file. */
export const FLAGS = {
  config: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  data: { type: 'string' },
  id: { type: 'string' },
  zone: { type: 'string' },
  durability: { type: 'string' },
  token: { type: 'string' },
  'token-file': { type: 'string' },
  'data-token': { type: 'string' },
  'data-token-file': { type: 'string' },
  'admin-token': { type: 'string' },
  'admin-token-file': { type: 'string' },
  'metrics-token': { type: 'string' },
  'metrics-token-file': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-client-ca': { type: 'string' },
  'log-level': { type: 'string' },
  'max-hints': { type: 'string' },
  'max-hint-age-s': { type: 'string' },
  'cache-mib': { type: 'string' },
  'mmap-mib': { type: 'string' },
  'max-db-mib': { type: 'string' },
  version: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const

/** The defaults of the settings that have one. */
const DEFAULTS: Readonly<Record<string, string>> = {
  port: '7070',
  host: '127.0.0.1',
  durability: 'normal',
  'log-level': 'info',
  'max-hints': '100000',
  'max-hint-age-s': '604800',
  'cache-mib': '64',
  'mmap-mib': '0',
}

/** The flags the environment and a config file may set: all but --config, --help and --version. */
const SETTINGS = Object.keys(FLAGS).filter((f) => f !== 'config' && f !== 'help' && f !== 'version')

/** A whole decimal integer in [min, max]: `Number()` alone would take '', ' 7', '0x10' and '1e3'. */
function integer(label: string, text: string, min: number, max: number): number {
  const value = /^\d{1,15}$/.test(text) ? Number(text) : Number.NaN
  if (!(value >= min && value <= max)) throw new UsageError(`${label} must be a whole number in ${min}..${max}, got ${JSON.stringify(text)}`)
  return value
}

function name(label: string, text: string): string {
  if (!NAME.test(text)) throw new UsageError(`${label} must be 1..64 of A-Z a-z 0-9 _ . -, got ${JSON.stringify(text)}`)
  return text
}

function flagValues(argv: readonly string[]) {
  try {
    return parseArgs({ args: [...argv], options: FLAGS }).values
  } catch (e) {
    // parseArgs explains unknown flags, missing values and stray arguments in one sentence.
    throw new UsageError((e as Error).message.split('\n')[0] ?? 'bad command line')
  }
}

/** The TLS files, read now: a certificate without its key (or a client CA without both) is a mistake. */
function tlsFrom(layers: readonly Layer[]): TlsFiles | undefined {
  const [cert, key, clientCa] = (['tls-cert', 'tls-key', 'tls-client-ca'] as const).map((flag) => lookup(layers, flag))
  if (!cert && !key && !clientCa) return undefined
  if (!cert || !key) throw new UsageError('--tls-cert and --tls-key go together (and --tls-client-ca needs both)')
  const pem = (found: { value: string; label: string }) => readSmall(found.label, found.value)
  return { cert: pem(cert), key: pem(key), ...(clientCa ? { clientCa: pem(clientCa) } : {}) }
}

/** Where settings come from, first wins: the command line, the environment, then the config file. */
function settingLayers(values: ReturnType<typeof flagValues>, env: NodeJS.ProcessEnv): Layer[] {
  const { help: _h, version: _v, config, ...given } = values
  const configPath = config ?? (env[ENV.config] || undefined)
  return [argvLayer(given), envLayer(SETTINGS, env), ...(configPath ? [configLayer(configPath, SETTINGS)] : [])]
}

/** The command line, environment and config file, checked; throws UsageError (one line) on any mistake. */
export function parseCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Command {
  const values = flagValues(argv)
  if (values.help) return { help: true }
  if (values.version) return { version: true }
  const layers = settingLayers(values, env)
  const setting = (flag: string) => {
    const found = lookup(layers, flag)
    return found ?? (DEFAULTS[flag] === undefined ? undefined : { value: DEFAULTS[flag], label: `--${flag}` })
  }
  const need = (flag: string) => setting(flag) as { value: string; label: string }
  const port = integer(need('port').label, need('port').value, 0, 65535)
  if (need('host').value.length === 0) throw new UsageError(`${need('host').label} must not be empty`)
  const durability = need('durability')
  if (durability.value !== 'normal' && durability.value !== 'full')
    throw new UsageError(`${durability.label} must be normal or full, got ${JSON.stringify(durability.value)}`)
  const level = need('log-level')
  const logLevel = LOG_LEVELS.find((l) => l === level.value)
  if (!logLevel) throw new UsageError(`${level.label} must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level.value)}`)
  const data = setting('data')
  if (data?.value.length === 0) throw new UsageError(`${data.label} must not be empty`)
  const id = setting('id')
  const zone = setting('zone')
  const tls = tlsFrom(layers)
  const maxDbMib = setting('max-db-mib')
  return {
    run: {
      port,
      host: need('host').value,
      data: data?.value ?? join('data', `node-${port}`),
      id: id === undefined ? `node-${port}` : name(id.label, id.value),
      ...(zone === undefined ? {} : { zone: name(zone.label, zone.value) }),
      durability: durability.value,
      secrets: secretsFrom(layers),
      ...(tls ? { tls } : {}),
      logLevel,
      maxHints: integer(need('max-hints').label, need('max-hints').value, 0, MAX_HINTS_LIMIT),
      maxHintAgeS: integer(need('max-hint-age-s').label, need('max-hint-age-s').value, 1, MAX_HINT_AGE_S_LIMIT),
      cacheMiB: integer(need('cache-mib').label, need('cache-mib').value, 4, 65536),
      mmapMiB: integer(need('mmap-mib').label, need('mmap-mib').value, 0, 65536),
      ...(maxDbMib === undefined ? {} : { maxDbMib: integer(maxDbMib.label, maxDbMib.value, 1, MAX_DB_MIB_LIMIT) }),
    },
  }
}

/** Only the secrets, re-read from the same command line, environment and files (SIGHUP: a rotation step). */
export function reloadSecrets(argv: readonly string[], env: NodeJS.ProcessEnv): Secrets {
  const command = parseCommand(argv, env)
  if (!('run' in command)) throw new UsageError('no node options to reload')
  return command.run.secrets
}

/** Only the TLS files, read again from the same command line, environment and config file (SIGHUP: a certificate rotation). */
export function reloadTls(argv: readonly string[], env: NodeJS.ProcessEnv): TlsFiles | undefined {
  return tlsFrom(settingLayers(flagValues(argv), env))
}
