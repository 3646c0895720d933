import { readFileSync } from 'node:fs'
import { UsageError } from '@kvorum/core'

/**
 * Where a node's settings come from, highest first: the command line, the
 * environment (KVORUM_NODE_<FLAG>), the config file (--config, JSON keyed by
 * flag name), then the flag's default. Secrets can come from any of them but
 * the command line is the one every user of the machine can read (ps), so
 * deployments use the last three.
 */

/** One source of settings: values by flag name, and how to name a flag of it in an error. */
export interface Layer {
  readonly values: Readonly<Record<string, string | undefined>>
  label(flag: string): string
}

/** Largest config file read, bytes. */
const MAX_CONFIG_BYTES = 64 * 1024
/** Largest file a secret or a PEM is read from, bytes. */
const MAX_FILE_BYTES = 1024 * 1024

/** The environment variable of a flag: `max-hints` → KVORUM_NODE_MAX_HINTS. */
export const envName = (flag: string): string => `KVORUM_NODE_${flag.toUpperCase().replaceAll('-', '_')}`

/** A small file's text, or a one-line UsageError saying why not. */
export function readSmall(what: string, path: string, maxBytes = MAX_FILE_BYTES): string {
  let bytes: Buffer
  try {
    bytes = readFileSync(path)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message
    throw new UsageError(`cannot read ${what} ${path}: ${why}`)
  }
  if (bytes.length > maxBytes) throw new UsageError(`${what} ${path} is over ${maxBytes} bytes`)
  return bytes.toString('utf8')
}

export function argvLayer(values: Readonly<Record<string, string | undefined>>): Layer {
  return { values, label: (flag) => `--${flag}` }
}

/** The KVORUM_NODE_* variables of `flags`; an empty one counts as unset. */
export function envLayer(flags: readonly string[], env: NodeJS.ProcessEnv): Layer {
  const values: Record<string, string> = {}
  for (const flag of flags) {
    const value = env[envName(flag)]
    if (value !== undefined && value !== '') values[flag] = value
  }
  return { values, label: envName }
}

/**
 * The config file: one JSON object whose keys are flag names (`"port": 7070`,
 * `"admin-token-file": "/etc/kvorum/admin"`); values are strings or numbers,
 * and a secret may be a list of two (a rotation). Unknown keys are refused.
 */
export function configLayer(path: string, flags: readonly string[]): Layer {
  let parsed: unknown
  try {
    parsed = JSON.parse(readSmall('--config', path, MAX_CONFIG_BYTES))
  } catch (e) {
    if (e instanceof UsageError) throw e
    throw new UsageError(`--config ${path} is not JSON: ${(e as Error).message}`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new UsageError(`--config ${path} must hold one JSON object keyed by flag name`)
  const values: Record<string, string> = {}
  for (const [key, value] of Object.entries(parsed)) {
    if (!flags.includes(key)) throw new UsageError(`--config ${path}: unknown key ${JSON.stringify(key)} (the keys are kvorum-node's flag names, e.g. "port")`)
    if (typeof value === 'string' || typeof value === 'number') values[key] = String(value)
    else if (Array.isArray(value) && value.every((v) => typeof v === 'string')) values[key] = value.join('\n')
    else throw new UsageError(`--config ${path}: "${key}" must be a string or a number`)
  }
  return { values, label: (flag) => `"${flag}" in ${path}` }
}

/** A flag's value from the first layer that has it, with that layer's name for it. */
export function lookup(layers: readonly Layer[], flag: string): { value: string; label: string } | undefined {
  for (const layer of layers) {
    const value = layer.values[flag]
    if (value !== undefined) return { value, label: layer.label(flag) }
  }
  return undefined
}
