import type { SiblingSet } from '@kvorum/core'

/**
 * Sibling sets this client is sending to replicas right now (the second half
 * of a put). A read that finds a replica behind only by what is already on
 * its way there does not repair it: the merge in flight brings the same set,
 * and if that merge fails the put leaves a hint for the replica instead.
 */
export class InFlightWrites {
  private readonly sets = new Map<string, SiblingSet[]>()

  /** Remember that `set` is going to `node` until `sent` settles. */
  track(node: string, store: string, key: Uint8Array, set: SiblingSet, sent: Promise<unknown>): void {
    const id = idOf(node, store, key)
    const list = this.sets.get(id)
    if (list) list.push(set)
    else this.sets.set(id, [set])
    const done = () => {
      const now = this.sets.get(id)
      if (!now) return
      const i = now.indexOf(set)
      if (i >= 0) now.splice(i, 1)
      if (now.length === 0) this.sets.delete(id)
    }
    sent.then(done, done)
  }

  /** The sets in flight to `node` for a key right now (a copy). */
  pending(node: string, store: string, key: Uint8Array): readonly SiblingSet[] {
    return [...(this.sets.get(idOf(node, store, key)) ?? [])]
  }

  /** Keys with a set in flight, for tests and metrics. */
  get size(): number {
    return this.sets.size
  }
}

function idOf(node: string, store: string, key: Uint8Array): string {
  return `${node}\u0000${store}\u0000${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1')}`
}
