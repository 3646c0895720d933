import { UsageError } from '@kvorum/core'
import { MAX_SECRETS_PER_ROLE, type Secrets } from './credentials.js'
import { type Layer, readSmall } from './layers.js'

/** Longest secret, characters. */
const MAX_TOKEN_LENGTH = 1024

/** The secret flags, each with a `-file` twin, and the role they fill. */
const SECRET_FLAGS = { token: 'all', 'data-token': 'data', 'admin-token': 'admin', 'metrics-token': 'metrics' } as const

/** One or two secrets, one a line (surrounding whitespace dropped), each as a header carries it: visible ASCII, no spaces. */
function secretsIn(what: string, text: string): string[] {
  const secrets = text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
  if (secrets.length === 0 || secrets.length > MAX_SECRETS_PER_ROLE)
    throw new UsageError(`${what} must hold 1..${MAX_SECRETS_PER_ROLE} tokens (two while a rotation runs), one a line`)
  for (const s of secrets)
    if (s.length > MAX_TOKEN_LENGTH || !/^[\x21-\x7e]+$/.test(s))
      throw new UsageError(`${what} must be 1..${MAX_TOKEN_LENGTH} visible ASCII characters without spaces`)
  return secrets
}

/** One secret flag from the highest layer that gives it or its file; a layer giving both is a mistake. */
function secretFrom(flag: string, layers: readonly Layer[]): string[] {
  const file = `${flag}-file`
  for (const layer of layers) {
    const value = layer.values[flag]
    const path = layer.values[file]
    if (value !== undefined && path !== undefined) throw new UsageError(`give ${layer.label(flag)} or ${layer.label(file)}, not both`)
    if (value !== undefined) return secretsIn(layer.label(flag), value)
    if (path !== undefined) return secretsIn(`the token in ${path}`, readSmall(layer.label(file), path))
  }
  return []
}

/**
 * Every role's secrets. Either every role gets one (from --token, or from
 * --data-token, --admin-token and --metrics-token), or none does, except
 * that a metrics token alone guards /metrics: a role left open beside a
 * guarded one (say, admin open beside a data token) is refused.
 */
export function secretsFrom(layers: readonly Layer[]): Secrets {
  const [all, data, admin, metrics] = Object.keys(SECRET_FLAGS).map((flag) => secretFrom(flag, layers)) as [string[], string[], string[], string[]]
  if (all.length === 0 && (data.length > 0 || admin.length > 0) && (data.length === 0 || admin.length === 0 || metrics.length === 0))
    throw new UsageError(
      '--data-token, --admin-token and --metrics-token go together (a role left open beside a guarded one is a hole); or give --token for every role',
    )
  return { all, data, admin, metrics }
}
