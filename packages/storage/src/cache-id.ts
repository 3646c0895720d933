/** A key's id in the row cache: its store and its bytes as latin1 text. */
function cacheId(store: string, key: Uint8Array): string {
  return `${store}\u0000${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1')}`
}

/**
 * The cache id of the key last asked about, kept: one write asks for its key's
 * id five or six times (refusal, damage, read, write, persist), and building
 * and hashing a fresh string each time showed in profiles. The bytes are
 * compared, not only the array, so a reused buffer never gets a stale id.
 */
export class LastId {
  private store = ''
  private key: Uint8Array = new Uint8Array(0)
  private id = ''

  of(store: string, key: Uint8Array): string {
    if (store === this.store && sameBytes(key, this.key)) return this.id
    this.id = cacheId(store, key)
    this.store = store
    // A copy even of a Node Buffer (whose slice() is a view of the same memory), so a caller rewriting its key cannot change the saved one.
    this.key = new Uint8Array(key)
    return this.id
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
