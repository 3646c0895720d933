import type { Store } from '@kvorum/client'

/** What a mixed load did: operations that succeeded and those that failed. */
export interface MixedLoad {
  ops: number
  errors: number
}

/**
 * Half reads, half writes of `valueBytes`, uniform over `keys` keys (the
 * worst case for caches), from `concurrency` workers until `seconds` pass.
 */
export async function mixedLoad(store: Store<Uint8Array>, keys: number, valueBytes: number, concurrency: number, seconds: number): Promise<MixedLoad> {
  const until = performance.now() + seconds * 1000
  const done: MixedLoad = { ops: 0, errors: 0 }
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const key = `key-${Math.floor(Math.random() * keys)}`
        try {
          if (Math.random() < 0.5) await store.get(key)
          else await store.put(key, new Uint8Array(valueBytes).fill(done.ops % 251))
          done.ops++
        } catch {
          done.errors++
        }
      }
    }),
  )
  return done
}
