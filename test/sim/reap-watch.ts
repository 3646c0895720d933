import { goneFromMs, toHex } from '@kvorum/core'
import type { StorageEngine } from '@kvorum/storage'
import type { VirtualClock } from './clock.js'

/**
 * Watches the engines for a tombstone reaped before the grace period has
 * passed, on true (virtual) time, since its key became a tombstone (or
 * expiring) on that node: the promise a node makes, whatever the nodes' and
 * clients' skewed clocks say. It wraps three methods of each engine (batch, mergePut, reap)
 * to read the keys they wrote afterwards, changing nothing they do.
 */
export class ReapWatch {
  /** True virtual time each node's key became a tombstone there, by `node store key`. */
  private readonly since = new Map<string, number>()
  /** `node key (age ms)` of each early reap. */
  readonly early: string[] = []

  constructor(
    private readonly clock: VirtualClock,
    private readonly graceMs: number,
  ) {}

  /** After a write to `keys` on `node`: note when each became a tombstone, forget the ones that are not. */
  private async note(node: string, engine: StorageEngine, store: string, keys: readonly Uint8Array[]): Promise<void> {
    if (keys.length === 0) return
    const sets = await engine.get(store, keys)
    keys.forEach((key, i) => {
      const res = sets[i]
      const id = `${node} ${store} ${toHex(key)}`
      // As the engine counts it: from when every version was a tombstone or expiring, without a gap.
      if (res?.ok && res.value.length > 0 && goneFromMs(res.value, 0) !== null) {
        if (!this.since.has(id)) this.since.set(id, this.clock.now)
      } else this.since.delete(id)
    })
  }

  watch(node: string, engine: StorageEngine): void {
    const batch = engine.batch.bind(engine)
    engine.batch = async (store, b) => {
      const out = await batch(store, b)
      await this.note(node, engine, store, [...b.coordinates.map((c) => c.key), ...b.merges.map((m) => m.key)])
      return out
    }
    const mergePut = engine.mergePut.bind(engine)
    engine.mergePut = async (store, items) => {
      const out = await mergePut(store, items)
      await this.note(
        node,
        engine,
        store,
        items.map((it) => it.key),
      )
      return out
    }
    const reap = engine.reap.bind(engine)
    engine.reap = async (store, items) => {
      const n = await reap(store, items)
      if (n === 0) return n
      const after = await engine.get(
        store,
        items.map((it) => it.key),
      )
      items.forEach((it, i) => {
        const row = after[i]
        const id = `${node} ${store} ${toHex(it.key)}`
        const since = this.since.get(id)
        if (!row?.ok || row.value.length > 0 || since === undefined) return
        this.since.delete(id)
        if (this.clock.now - since < this.graceMs)
          this.early.push(`${node} ${Buffer.from(it.key).toString()} (${Math.round(this.clock.now - since)} ms a tombstone)`)
      })
      return n
    }
  }
}
