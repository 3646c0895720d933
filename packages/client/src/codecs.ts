import { InvalidInputError, fromUtf8, utf8 } from '@kvorum/core'

/** Turns application values into bytes and back. */
export interface Codec<T> {
  encode(value: T): Uint8Array
  decode(bytes: Uint8Array): T
}

/** What JSON.parse can return: the value type of a `json` store unless the caller names its own. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

/** Values are raw bytes. */
export const bytesCodec: Codec<Uint8Array> = {
  encode: (v) => {
    if (!(v instanceof Uint8Array)) throw new InvalidInputError('the bytes codec takes a Uint8Array value')
    return v
  },
  decode: (b) => b,
}

/** Values are strings, stored as UTF-8. */
export const utf8Codec: Codec<string> = {
  encode: (v) => {
    if (typeof v !== 'string') throw new InvalidInputError('the utf8 codec takes a string value')
    return utf8(v)
  },
  decode: (b) => fromUtf8(b),
}

/** Values are JSON documents, stored as UTF-8 JSON. */
export const jsonCodec: Codec<JsonValue> = {
  encode: (v) => {
    const text = JSON.stringify(v)
    if (text === undefined) throw new InvalidInputError('the json codec cannot encode undefined or a function')
    return utf8(text)
  },
  decode: (b) => JSON.parse(fromUtf8(b)),
}

/** Codec names a store accepts. */
export type CodecName = 'bytes' | 'utf8' | 'json'

/** A store handle's codec, and the name its errors give it. */
export interface NamedCodec<T> {
  readonly codec: Codec<T>
  readonly name: string
}

export function codecFor<T>(codec: CodecName | Codec<T> | undefined): NamedCodec<T> {
  if (codec === undefined || codec === 'bytes') return { codec: bytesCodec as unknown as Codec<T>, name: 'bytes' }
  if (codec === 'utf8') return { codec: utf8Codec as unknown as Codec<T>, name: 'utf8' }
  if (codec === 'json') return { codec: jsonCodec as unknown as Codec<T>, name: 'json' }
  return { codec, name: 'custom' }
}
