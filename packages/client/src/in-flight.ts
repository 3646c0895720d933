import { type SiblingSet, type Time, sizeHint } from '@kvorum/core'

/** How long a replica's acknowledged merge still counts as known to be there, ms (a read's replies arrive within this). */
const RECENT_MS = 500
/** Most acknowledged merges remembered at once, and about their bytes. */
const MAX_RECENT = 4096
const MAX_RECENT_BYTES = 8 * 1024 * 1024

/**
 * Sibling sets this client is sending to replicas (the second half of a put),
 * and those the replicas acknowledged in the last half second (bounded). A read that
 * finds a replica behind only by such sets does not repair it: the merge in
 * flight brings them (or the put leaves a hint if it fails), and an
 * acknowledged one is already there.
 */
export class InFlightWrites {
  private readonly going = new Map<string, SiblingSet[]>()
  private readonly recent = new Map<string, SiblingSet[]>()
  /** Acknowledged merges in the order they came, for forgetting them. */
  private readonly order: { id: string; set: SiblingSet; at: number; bytes: number }[] = []
  private recentBytes = 0

  constructor(private readonly time: Time) {}

  /** Remember that `set` is going to `node` until `sent` settles (and a while after, if it was acknowledged). */
  track(node: string, store: string, key: Uint8Array, set: SiblingSet, sent: Promise<{ ok: boolean }>): void {
    const id = idOf(node, store, key)
    add(this.going, id, set)
    const settle = (acknowledged: boolean) => {
      remove(this.going, id, set)
      if (!acknowledged) return
      add(this.recent, id, set)
      const bytes = sizeHint(set)
      this.order.push({ id, set, at: this.time.monotonicMs(), bytes })
      this.recentBytes += bytes
      this.forget()
    }
    sent.then(
      (res) => settle(res.ok),
      () => settle(false),
    )
  }

  /** The sets going to `node` for a key, or acknowledged by it lately. */
  known(node: string, store: string, key: Uint8Array): SiblingSet[] {
    this.forget()
    const id = idOf(node, store, key)
    return [...(this.going.get(id) ?? []), ...(this.recent.get(id) ?? [])]
  }

  /** Keys with a set in flight, for tests. */
  get size(): number {
    return this.going.size
  }

  private forget(): void {
    const cutoff = this.time.monotonicMs() - RECENT_MS
    let n = 0
    while (
      n < this.order.length &&
      (this.order.length - n > MAX_RECENT || this.recentBytes > MAX_RECENT_BYTES || (this.order[n] as { at: number }).at < cutoff)
    ) {
      const { id, set, bytes } = this.order[n] as { id: string; set: SiblingSet; bytes: number }
      remove(this.recent, id, set)
      this.recentBytes -= bytes
      n++
    }
    if (n > 0) this.order.splice(0, n)
  }
}

function add(map: Map<string, SiblingSet[]>, id: string, set: SiblingSet): void {
  const list = map.get(id)
  if (list) list.push(set)
  else map.set(id, [set])
}

function remove(map: Map<string, SiblingSet[]>, id: string, set: SiblingSet): void {
  const list = map.get(id)
  if (!list) return
  const i = list.indexOf(set)
  if (i >= 0) list.splice(i, 1)
  if (list.length === 0) map.delete(id)
}

function idOf(node: string, store: string, key: Uint8Array): string {
  return `${node}\u0000${store}\u0000${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1')}`
}
