import type { Kvorum } from '@kvorum/client'

/**
 * Writers putting fresh keys to store `default` until stopped (each key once, so each write's
 * own replication is what a later check sees: no later write carries it along), at most 5,000
 * per client, and what each acknowledged and what failed (by code).
 */
export function writers(clients: readonly Kvorum[]) {
  let stop = false
  const acked: string[] = []
  const errors: string[] = []
  const run = async (kv: Kvorum, w: number) => {
    const s = kv.store('default', { codec: 'utf8' })
    for (let i = 0; !stop && i < 5000; i++) {
      const key = `w${w}-${i}`
      try {
        await s.put(key, key)
        acked.push(key)
      } catch (e) {
        errors.push((e as { code?: string }).code ?? String(e))
      }
    }
  }
  const done = Promise.all(clients.map((kv, w) => run(kv, w)))
  return {
    acked,
    errors,
    async stop() {
      stop = true
      await done
    },
  }
}
