import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type CoordinateItem,
  InvalidInputError,
  decodeStoreBatchResults,
  encodeCoordinate,
  encodeHints,
  encodeKeySets,
  encodeStoreBatch,
  toHex,
  utf8,
} from '@kvorum/core'
import { defective } from './fuzz/defects.js'
import { Client, type WireRequest } from './fuzz/http.js'
import { type Pool, clock, key, siblings, timestamp, value } from './fuzz/gen.js'
import { looseClock, looseVersion, writeCoordinate, writeKeySets } from './fuzz/loose.js'
import { snapshot, unexplained } from './fuzz/model.js'
import { Random } from './support/random.js'
import { ROUTES } from './fuzz/routes.js'
import { type Summary, runFuzz } from './fuzz/run.js'
import { BINARY, STORES, type Target, auth, startTarget } from './fuzz/target.js'

/** The seed of the bounded run in `npm test`; `npm run fuzz -- --seed N` replays any other. */
const SEED = 20_251_122
/**
 * The seed whose first 600 requests found three bugs: request #7 (a backslash
 * in the path), #86 (lww timestamp overflow) and #318 (deep cluster JSON). A
 * change to the generators changes its stream; the targeted tests below stay.
 * Since the harnesses share test/support/random.ts a random byte is the top
 * byte of its draw, not the bottom one: every seed draws the same number of
 * times and sends the same classes of request, with other random bytes in them.
 */
const REGRESSION_SEED = 5

function failures(s: Summary): string {
  const lines = s.violations.map((v) => `#${v.index} ${v.problem}\n    ${v.request}`)
  return `seed ${s.seed} (replay: npm run fuzz -- --seed ${s.seed} --requests ${s.requests}):\n${lines.join('\n')}\n${s.nodeLog}`
}

describe('protocol fuzzing of a running node', () => {
  it('4,000 random and damaged requests: no crash, hang, 5xx or unstable code, and no data changed by a refused request', async () => {
    const s = await runFuzz({ seed: SEED, requests: 4000, oversized: 2, slowlorisRounds: 1 })
    expect(s.violations, failures(s)).toEqual([])
    expect(s.requests).toBe(4000)
    // Valid traffic got through and most batches were data-checked: the run could have failed.
    expect(s.byStatus['200'] ?? 0).toBeGreaterThan(500)
    expect(s.checkedBatches).toBeGreaterThan(s.batches * 0.8)
  }, 90_000)

  it(`regression: seed ${REGRESSION_SEED}, 600 requests (found the three bugs below)`, async () => {
    const s = await runFuzz({ seed: REGRESSION_SEED, requests: 600, oversized: 0, slowlorisRounds: 0 })
    expect(s.violations, failures(s)).toEqual([])
  }, 60_000)
})

describe('the fuzzer itself', () => {
  it('writes with its loose encoder the bytes the @kvorum/core encoders write', () => {
    const prng = new Random(7)
    const pool: Pool = { prng, stores: [], seededKeys: [utf8('seed-00')], actors: ['a', 'b', 'c0ffee', 'constructor'] }
    for (let i = 0; i < 200; i++) {
      const items: CoordinateItem[] = [{ key: key(pool), value: value(pool, 64), context: clock(pool), timestamp: timestamp(prng) }]
      const loose = items.map((it) => ({
        key: it.key,
        timestamp: it.timestamp,
        context: looseClock(it.context),
        flag: it.value === null ? 1 : 0,
        value: it.value ?? new Uint8Array(0),
      }))
      expect(toHex(writeCoordinate(loose))).toBe(toHex(encodeCoordinate(items)))
      const sets = [{ key: key(pool), siblings: siblings(pool, 64) }]
      expect(toHex(writeKeySets(sets.map((s) => ({ key: s.key, siblings: s.siblings.map(looseVersion) }))))).toBe(toHex(encodeKeySets(sets)))
      const hints = sets.map((s) => ({ ...s, store: 'kv' }))
      expect(toHex(writeKeySets(hints.map((h) => ({ store: utf8(h.store), key: h.key, siblings: h.siblings.map(looseVersion) }))))).toBe(
        toHex(encodeHints(hints)),
      )
    }
  })

  it('makes every defective frame one the decoders refuse', () => {
    const prng = new Random(11)
    const pool: Pool = { prng, stores: STORES, seededKeys: [utf8('seed-00')], actors: ['c0ffee', 'a', 'constructor'] }
    const accepted: string[] = []
    for (let i = 0; i < 1000; i++) {
      const route = prng.pick(ROUTES)
      const store = prng.pick(STORES)
      const made = defective(pool, route.name, store)
      if (!made) continue
      try {
        route.decode(made.bytes, store)
        accepted.push(`${route.name}:${made.how}`)
      } catch (e) {
        expect(e).toBeInstanceOf(InvalidInputError)
      }
    }
    expect(accepted).toEqual([])
  })
})

describe('one node: the data check, and the bugs fuzzing found', () => {
  let target: Target
  let client: Client
  beforeAll(async () => {
    target = await startTarget(new Random(1))
    client = new Client(target.proc.port, 2, 10_000)
  })
  afterAll(async () => {
    client.close()
    await target.close()
  })

  const send = (req: WireRequest) => client.send(req)
  const coordinate = (store: string, items: CoordinateItem[]) =>
    send({ method: 'POST', path: `/v1/stores/${store}/batch`, headers: BINARY, body: encodeStoreBatch({ keys: [], coordinates: items, merges: [] }) })
  const coordinated = (body: Uint8Array) => decodeStoreBatchResults(body).coordinates

  it('checks data: a change no accepted request explains is reported, one it explains is not', async () => {
    const before = await snapshot(client, target)
    const written = utf8('seed-01')
    expect((await coordinate('kv', [{ key: written, value: utf8('changed'), context: {}, timestamp: 1 }])).status).toBe(200)
    const after = await snapshot(client, target)
    expect(unexplained(before, after, new Map(), target).length).toBeGreaterThan(0)
    expect(unexplained(before, after, new Map([['kv', [written]]]), target)).toEqual([])
  })

  it('lww timestamp overflow: a write whose context covers a version stamped 2^53-1 is stored, not a 500 (seed 5, #86)', async () => {
    const k = utf8('overflow')
    const first = await coordinate('lww', [{ key: k, value: utf8('a'), context: {}, timestamp: Number.MAX_SAFE_INTEGER }])
    expect(first.status).toBe(200)
    const [res] = coordinated(first.body)
    if (!res?.ok) throw new Error('first write failed')
    const context = { [res.value.dot.actor]: res.value.dot.counter }
    const second = await coordinate('lww', [{ key: k, value: utf8('b'), context, timestamp: 1 }])
    expect(second.status, second.body.toString()).toBe(200)
    const [next] = coordinated(second.body)
    expect(next?.ok && next.value.siblings.map((v) => [Buffer.from(v.value ?? []).toString(), v.timestamp])).toEqual([['b', Number.MAX_SAFE_INTEGER]])
  })

  it('deep cluster JSON: PUT /v1/cluster nested 100,000 deep (whole or in one field) is a 400, not a 500 (seed 5, #318)', async () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000)
    const good = JSON.stringify(target.def)
    const bodies = [
      deep,
      good.replace(/}$/, `,"extra":${deep}}`),
      good.replace(/"assignment":\[("n1",){7}"n1"\]/, `"assignment":["n1","n1","n1","n1","n1","n1","n1",${deep}]`),
    ]
    expect(new Set(bodies).size).toBe(3)
    for (const body of bodies) {
      const res = await send({ method: 'PUT', path: '/v1/cluster', headers: { ...auth, 'content-type': 'application/json' }, body: utf8(body) })
      expect(res.status, res.body.toString().slice(0, 200)).toBe(400)
      expect(JSON.parse(res.body.toString())).toMatchObject({ code: 'KV_INVALID_INPUT' })
    }
  })

  it('bare 400: a backslash in the path or a malformed Host header is refused in JSON with a stable code (seed 5, #7)', async () => {
    for (const req of [
      { method: 'GET', path: '/v1/stores/kv\\merkle', headers: auth },
      { method: 'GET', path: '/v1/cluster', headers: { ...auth, host: '127.0.0.1/v1/cluster?' } },
      { method: 'GET', path: '/health', headers: { host: 'a b' } },
    ]) {
      const res = await send(req)
      expect(res.status, `${req.path} ${JSON.stringify(req.headers)}`).toBe(400)
      expect(JSON.parse(res.body.toString())).toMatchObject({ code: 'KV_INVALID_INPUT' })
    }
  })
})
