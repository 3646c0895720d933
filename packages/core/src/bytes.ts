const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** A key as the caller gives it: a UTF-8 string or raw bytes. */
export type KeyInput = string | Uint8Array

/** UTF-8 bytes of a string, or the bytes themselves. */
export function keyBytes(key: KeyInput): Uint8Array {
  return typeof key === 'string' ? encoder.encode(key) : key
}

export function utf8(text: string): Uint8Array {
  return encoder.encode(text)
}

export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes)
}

/** A printable form of a key for messages: UTF-8 when it decodes, else hex. */
export function showKey(key: Uint8Array): string {
  try {
    const text = decoder.decode(key)
    return JSON.stringify(text.length > 64 ? `${text.slice(0, 61)}...` : text)
  } catch {
    return `0x${toHex(key.subarray(0, 32))}${key.length > 32 ? '...' : ''}`
  }
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
