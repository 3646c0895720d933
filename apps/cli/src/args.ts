import { type ParseArgsConfig, parseArgs } from 'node:util'
import { UsageError } from '@kvorum/core'

export { UsageError }

type Options = NonNullable<ParseArgsConfig['options']>

/** parseArgs with our error type; positional arguments allowed. */
export function parse<S extends Options>(
  argv: string[],
  options: S,
): ReturnType<typeof parseArgs<{ args: string[]; options: S; allowPositionals: true; strict: true }>> {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true })
  } catch (e) {
    throw new UsageError((e as Error).message)
  }
}

/** An integer flag within bounds. */
export function intFlag(value: string | undefined, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer ${min}..${max}, got ${value}`)
  return n
}

/** Seed URLs from --seeds (comma-separated) or KVORUM_SEEDS. */
export function seedsFlag(value: string | undefined): string[] {
  const raw = value ?? process.env.KVORUM_SEEDS
  if (!raw) throw new UsageError('--seeds URL[,URL...] is required (or set KVORUM_SEEDS)')
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
}

/** Token from --token or KVORUM_TOKEN. */
export function tokenFlag(value: string | undefined): { token?: string } {
  const token = value ?? process.env.KVORUM_TOKEN
  return token ? { token } : {}
}
