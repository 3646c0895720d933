import { describe, expect, it } from 'vitest'
import { fromUtf8, realTime, setContext, toHex, utf8 } from '@kvorum/core'
import { type EngineFactory, Q, coordinatePut, dots, failed, ok, partOf, put, read, useEngines, values } from './engine.case.js'

/** The conformance suite's second half: hints and tombstones, the state that exists for healing. */
export function engineUpkeepSuite(kind: string, factory: EngineFactory): void {
  describe(`StorageEngine conformance, hints and tombstones: ${kind}`, () => {
    const engine = useEngines(factory)

    describe('hints', () => {
      it('a hint merged again after it was listed is not deleted by the stale ack', async () => {
        const a = await engine()
        const e = await engine()
        const first = await put(a, 'kv', 'h', 'one')
        ok((await e.putHints('n2', [{ store: 'kv', key: utf8('h'), siblings: first }]))[0])
        const [listed] = await e.listHints('n2', 10, 0)
        expect(listed?.store).toBe('kv')
        expect(fromUtf8(listed?.key ?? new Uint8Array())).toBe('h')
        expect(values(listed?.siblings ?? [])).toEqual(['one'])

        const second = await put(a, 'kv', 'h', 'two')
        ok((await e.putHints('n2', [{ store: 'kv', key: utf8('h'), siblings: second }]))[0])
        expect(await e.deleteHints('n2', [{ id: listed?.id ?? -1, seq: listed?.seq ?? -1 }])).toBe(0)
        const [again] = await e.listHints('n2', 10, 0)
        expect(again?.id).toBe(listed?.id)
        expect(again?.seq).not.toBe(listed?.seq)
        expect(values(again?.siblings ?? [])).toEqual(['one', 'two'])

        expect(await e.deleteHints('n2', [{ id: again?.id ?? -1, seq: again?.seq ?? -1 }])).toBe(1)
        expect(await e.listHints('n2', 10, 0)).toEqual([])
        expect(await e.hintTargets()).toEqual([])
      })

      it('lists hints a page at a time in id order', async () => {
        const a = await engine()
        const e = await engine()
        const set = await put(a, 'kv', 'x', 'v')
        ok(
          (
            await e.putHints(
              'n3',
              ['p1', 'p2', 'p3', 'p4', 'p5'].map((k) => ({ store: 'kv', key: utf8(k), siblings: set })),
            )
          )[4],
        )
        const seen: string[] = []
        let after = 0
        for (let page = 0; page < 10; page++) {
          const hints = await e.listHints('n3', 2, after)
          if (hints.length === 0) break
          expect(hints.length).toBeLessThanOrEqual(2)
          seen.push(...hints.map((h) => fromUtf8(h.key)))
          after = hints[hints.length - 1]?.id ?? after
        }
        expect(seen).toEqual(['p1', 'p2', 'p3', 'p4', 'p5'])
        await expect(e.listHints('n3', 0, 0)).rejects.toMatchObject({ code: 'KV_INVALID_INPUT' })
      })

      it('refuses new keys past the per-target backlog with KV_HINT_BACKLOG_FULL; hintTargets counts per target', async () => {
        let nowMs = 50_000
        const a = await engine()
        const e = await engine({ maxHintsPerTarget: 3, maxHintAgeMs: 10_000, time: { ...realTime, now: () => nowMs } })
        const set = await put(a, 'kv', 'x', 'v')
        const hint = (key: string) => ({ store: 'kv', key: utf8(key), siblings: set })
        const results = await e.putHints('n2', [hint('a'), hint('b'), hint('c'), hint('d')])
        expect(results.slice(0, 3).every((r) => r.ok)).toBe(true)
        expect(failed(results[3]).code).toBe('KV_HINT_BACKLOG_FULL')
        // Merging into a key already hinted adds nothing to the backlog, so it is still accepted.
        ok((await e.putHints('n2', [hint('a')]))[0])
        nowMs += 1000
        ok((await e.putHints('n3', [hint('a')]))[0])
        expect(await e.hintTargets()).toEqual([
          { target: 'n2', count: 3, oldestMs: 50_000 },
          { target: 'n3', count: 1, oldestMs: 51_000 },
        ])
        expect((await e.listHints('n2', 10, 0)).map((h) => fromUtf8(h.key))).toEqual(['a', 'b', 'c'])
        // Past maxHintAgeMs the hints go, and anti-entropy is left to repair.
        nowMs += 20_000
        expect(await e.listHints('n2', 10, 0)).toEqual([])
        expect(await e.hintTargets()).toEqual([])
        expect(e.stats.hintsExpired).toBe(4)
      })
    })

    describe('tombstones', () => {
      it('a headsOnly scan leaves values out but keeps dots and tombstones', async () => {
        const e = await engine()
        const live = await put(e, 'kv', 'h-live', 'payload')
        await put(e, 'kv', 'h-dead', null)
        const wanted = new Set([partOf(utf8('h-live')), partOf(utf8('h-dead'))])
        const items = (await Promise.all([...wanted].map((partition) => e.scan('kv', { partition, limit: 10, headsOnly: true })))).flatMap((p) => p.items)
        const byKey = new Map(items.map((it) => [fromUtf8(it.key), it.siblings]))
        expect(dots(byKey.get('h-live') ?? [])).toEqual(dots(live))
        expect(byKey.get('h-live')?.[0]?.value).toEqual(new Uint8Array(0))
        expect(byKey.get('h-dead')?.[0]?.value).toBeNull()
      })

      it('lists tombstones older than beforeMs, counting from when the key was first deleted here', async () => {
        let nowMs = 1000
        const e = await engine({ time: { ...realTime, now: () => nowMs } })
        const other = await engine()
        await put(e, 'kv', 'old', null)
        nowMs = 5000
        await put(e, 'kv', 'young', null)
        await put(e, 'kv', 'alive', 'v')
        // A second, concurrent tombstone merged later does not restart the grace period.
        ok((await e.mergePut('kv', [{ key: utf8('old'), siblings: await put(other, 'kv', 'old', null) }]))[0])
        const listed = (await Promise.all(Array.from({ length: Q }, (_, partition) => e.listTombstones('kv', { partition, beforeMs: 2000, limit: 10 })))).flat()
        expect(listed.map((it) => fromUtf8(it.key))).toEqual(['old'])
        expect(listed[0]?.siblings).toHaveLength(2)
      })

      it('an expiring value is listed and reaped as a tombstone only once it has expired here, counting its grace from the expiry', async () => {
        let nowMs = 1000
        const e = await engine({ time: { ...realTime, now: () => nowMs } })
        const expiring = async (key: string, ttlMs: number) =>
          ok((await coordinatePut(e, 'kv', [{ key: utf8(key), value: utf8('v'), context: {}, timestamp: nowMs, ttlMs }]))[0]).siblings
        // Expiring at 2000 and 9000 on the node's clock.
        const soon = await expiring('soon', 1000)
        const late = await expiring('late', 8000)
        await put(e, 'kv', 'forever', 'v')
        const listed = async (beforeMs: number) =>
          (await Promise.all(Array.from({ length: Q }, (_, partition) => e.listTombstones('kv', { partition, beforeMs, limit: 10 }))))
            .flat()
            .map((it) => fromUtf8(it.key))
        // Not listed while the expiry plus the grace (beforeMs = now - grace) is still ahead.
        expect(await listed(1500)).toEqual([])
        expect((await listed(2500)).sort()).toEqual(['soon'])
        // The node's own clock says whether the version has expired: not yet, so nothing goes.
        expect(await e.reap('kv', [{ key: utf8('soon'), siblings: soon }])).toBe(0)
        nowMs = 3000
        expect(
          await e.reap('kv', [
            { key: utf8('soon'), siblings: soon },
            { key: utf8('late'), siblings: late },
          ]),
        ).toBe(1)
        expect(await read(e, 'kv', 'soon')).toEqual([])
        expect(values(await read(e, 'kv', 'late'))).toEqual(['v'])
        expect((await listed(Number.MAX_SAFE_INTEGER)).sort()).toEqual(['late'])
      })

      it("a write's expiry is stamped from the node's clock, whatever the writer's timestamp; a ttl outside 1 ms..10 years is refused, nothing stored", async () => {
        const e = await engine({ time: { ...realTime, now: () => 50_000 } })
        const [stamped] = ok((await coordinatePut(e, 'kv', [{ key: utf8('k'), value: utf8('v'), context: {}, timestamp: 1, ttlMs: 5_000 }]))[0]).siblings
        expect(stamped?.expiresAt).toBe(55_000)
        for (const ttlMs of [0, 1.5, 10 * 365 * 24 * 3600 * 1000 + 1]) {
          const [res] = await coordinatePut(e, 'kv', [{ key: utf8('bad'), value: utf8('v'), context: {}, timestamp: 1, ttlMs }])
          expect(res).toMatchObject({ ok: false, error: { code: 'KV_INVALID_INPUT', message: expect.stringMatching(/ttlMs must be 1\.\./) } })
        }
        expect(await read(e, 'kv', 'bad')).toEqual([])
      })

      it('reap removes a key only while its set is still exactly the listed tombstones', async () => {
        const e = await engine()
        const gone = await put(e, 'kv', 'gone', null)
        const revived = await put(e, 'kv', 'revived', null)
        const redeleted = await put(e, 'kv', 'redeleted', null)
        await put(e, 'kv', 'revived', 'back', setContext(revived))
        await put(e, 'kv', 'redeleted', null, setContext(redeleted))
        const reaped = await e.reap('kv', [
          { key: utf8('gone'), siblings: gone },
          { key: utf8('revived'), siblings: revived },
          { key: utf8('redeleted'), siblings: redeleted },
        ])
        expect(reaped).toBe(1)
        expect(await read(e, 'kv', 'gone')).toEqual([])
        expect(values(await read(e, 'kv', 'revived'))).toEqual(['back'])
        expect(values(await read(e, 'kv', 'redeleted'))).toEqual([null])
        // The reaped key's digest left its leaf: the tree is what the two remaining keys alone give.
        const twin = await engine()
        for (const k of ['revived', 'redeleted']) ok((await twin.mergePut('kv', [{ key: utf8(k), siblings: await read(e, 'kv', k) }]))[0])
        expect(toHex(await e.merkleRoots('kv'))).toBe(toHex(await twin.merkleRoots('kv')))
      })
    })
  })
}
