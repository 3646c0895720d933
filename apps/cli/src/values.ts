import { readFileSync, statSync } from 'node:fs'
import { InvalidInputError, LIMITS } from '@kvorum/core'
import { UsageError } from './args.js'
import { didYouMean } from './suggest.js'

/** How the CLI turns a value argument into bytes, and stored bytes into output. */
export type CliCodec = 'utf8' | 'json' | 'bytes'

const CODECS: readonly CliCodec[] = ['utf8', 'json', 'bytes']

/** Most bytes a value read from stdin or a file may have: the largest value any store may allow. */
const MAX_INPUT_BYTES = LIMITS.maxValueBytesCeiling

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

export function codecFlag(value: string | undefined): CliCodec {
  if (value === undefined) return 'utf8'
  if ((CODECS as readonly string[]).includes(value)) return value as CliCodec
  throw new UsageError(`--codec must be utf8, json or bytes, got ${value}${didYouMean(value, CODECS)}`)
}

/** The bytes as text, or undefined when they are not UTF-8. */
export function textOf(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes)
  } catch {
    return undefined
  }
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}

function fromBase64(text: string): Uint8Array {
  const clean = text.trim()
  const bytes = Buffer.from(clean, 'base64')
  if (bytes.toString('base64') !== clean) throw new InvalidInputError('with --codec bytes a value on the command line is base64 (use @file or - for raw bytes)')
  return new Uint8Array(bytes)
}

async function readStdin(): Promise<Uint8Array> {
  if (process.stdin.isTTY) process.stderr.write('kvorum: reading the value from stdin (Ctrl-D ends it)\n')
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    total += chunk.length
    if (total > MAX_INPUT_BYTES) throw new InvalidInputError(`the value on stdin is over ${MAX_INPUT_BYTES} bytes`)
    chunks.push(chunk)
  }
  return new Uint8Array(Buffer.concat(chunks))
}

function readValueFile(path: string): Uint8Array {
  try {
    const size = statSync(path).size
    if (size > MAX_INPUT_BYTES) throw new InvalidInputError(`@${path} is ${size} bytes, over ${MAX_INPUT_BYTES}`)
    return new Uint8Array(readFileSync(path))
  } catch (e) {
    if (e instanceof InvalidInputError) throw e
    const code = (e as NodeJS.ErrnoException).code
    throw new InvalidInputError(`cannot read the value file ${path}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`)
  }
}

/** Where a put's value comes from: the argument itself, stdin (`-`) or a file (`@path`); `literal` keeps the argument as given. */
export interface ValueSource {
  readonly arg: string
  readonly literal: boolean
}

/**
 * The bytes to store. utf8: the text (a file or stdin must hold UTF-8);
 * json: the text parsed and stored compact, as the SDK's json codec writes it;
 * bytes: a file or stdin byte for byte, an argument decoded from base64.
 */
export async function valueBytes(src: ValueSource, codec: CliCodec): Promise<Uint8Array> {
  const fromArg = src.literal || (src.arg !== '-' && !src.arg.startsWith('@'))
  const where = fromArg ? 'the value' : src.arg === '-' ? 'the value on stdin' : `@${src.arg.slice(1)}`
  if (fromArg && codec === 'bytes') return fromBase64(src.arg)
  const raw = fromArg ? new TextEncoder().encode(src.arg) : src.arg === '-' ? await readStdin() : readValueFile(src.arg.slice(1))
  if (codec === 'bytes') return raw
  const text = textOf(raw)
  if (text === undefined) throw new InvalidInputError(`${where} is not UTF-8 text: pass --codec bytes to store bytes`)
  if (codec === 'utf8') return raw
  try {
    return new TextEncoder().encode(JSON.stringify(JSON.parse(text)))
  } catch (e) {
    throw new InvalidInputError(`${where} is not JSON (${(e as Error).message})`)
  }
}

/** One stored value as the CLI shows it; `note` says why it is not shown as the codec asked. */
export interface Shown {
  readonly text: string
  /** The value for --json output. */
  readonly json: unknown
  readonly note?: string
}

/** Show stored bytes under a codec: utf8 text (base64 with a note when not UTF-8), json pretty or compact, bytes base64. */
export function showValue(bytes: Uint8Array, codec: CliCodec, compact: boolean, label: string): Shown {
  if (codec === 'bytes') return { text: base64(bytes), json: base64(bytes) }
  const text = textOf(bytes)
  if (text === undefined) {
    if (codec === 'json') throw new InvalidInputError(`${label} is not JSON (it is not even UTF-8 text): read it with --codec bytes`)
    const b64 = base64(bytes)
    return { text: b64, json: { base64: b64 }, note: `${label} is not UTF-8 text, printed as base64 (--codec bytes --raw writes the bytes)` }
  }
  if (codec === 'utf8') return { text, json: text }
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (e) {
    throw new InvalidInputError(`${label} is not JSON (${(e as Error).message}): read it with --codec utf8`)
  }
  return { text: JSON.stringify(doc, null, compact ? undefined : 2), json: doc }
}
