import { InvalidInputError, fromUtf8, utf8 } from '@kvorum/core'

/** Turns application values into bytes and back. */
export interface Codec<T> {
  encode(value: T): Uint8Array
  decode(bytes: Uint8Array): T
}

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
export const jsonCodec: Codec<unknown> = {
  encode: (v) => {
    const text = JSON.stringify(v)
    if (text === undefined) throw new InvalidInputError('the json codec cannot encode undefined or a function')
    return utf8(text)
  },
  decode: (b) => JSON.parse(fromUtf8(b)),
}

/** Codec names a store accepts. */
export type CodecName = 'bytes' | 'utf8' | 'json'

export function codecFor<T>(codec: CodecName | Codec<T> | undefined): Codec<T> {
  if (codec === undefined || codec === 'bytes') return bytesCodec as unknown as Codec<T>
  if (codec === 'utf8') return utf8Codec as unknown as Codec<T>
  if (codec === 'json') return jsonCodec as Codec<T>
  return codec
}
