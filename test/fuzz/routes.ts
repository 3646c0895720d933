import {
  type CoordinateItem,
  type KeySet,
  type OpAnswer,
  type OpArgs,
  type Route,
  type StoreDef,
  LIMITS,
  ROUTES as PROTOCOL,
  ROUTE_LIST,
  callPath,
} from '@kvorum/core'
import { type Pool, batchSize, clock, counter, key, siblings, timestamp, value } from './gen.js'
import { PARTITIONS, STORES } from './target.js'

/** A binary body the node would take: the keys it may write (empty for reads) and how many items it holds. */
export interface Decoded {
  readonly items: number
  readonly writes: readonly Uint8Array[]
  /** Beside `writes`: the write carries a value over the store's limit, so the node must refuse it as an item. */
  readonly oversized?: readonly boolean[]
  /** The engine may still refuse the whole body (a partition out of range, an unknown store in a hint). */
  readonly refusable?: true
}

/** What a 2xx answer says: a problem with it, and the keys it says were written. */
export interface Answer {
  readonly problem?: string
  readonly written: readonly Uint8Array[]
}

/** One POST route of the binary node protocol. */
export interface BinaryRoute {
  readonly name: string
  /** The route's path; `store` is ignored by the hint routes. */
  path(store: string, target: string): string
  /** A valid body, built with the @kvorum/core encoders. */
  valid(pool: Pool, store: StoreDef): Uint8Array
  /** Decode as the node does; throws when the node must refuse the body. */
  decode(bytes: Uint8Array, store: StoreDef): Decoded
  /** Check a 2xx answer to a body that decoded as `req`. */
  answer(body: Uint8Array, req: Decoded, sent: Uint8Array, store: StoreDef): Answer
}

function counted(n: number, req: Decoded): string | undefined {
  return n === req.items ? undefined : `answer holds ${n} items for ${req.items} sent`
}

/** Keys of items the answer reports as ok (an item refused on its own must not have been written), and an oversized value the answer took. */
function writeResults(results: readonly { ok: boolean }[], req: Decoded): Answer {
  const problem =
    counted(results.length, req) ?? (req.oversized?.some((big, i) => big && results[i]?.ok) ? 'a value over the store limit was accepted' : undefined)
  return { ...(problem ? { problem } : {}), written: req.writes.filter((_, i) => results[i]?.ok !== false) }
}

/** A read of one partition: the engine refuses partitions past Q. */
function inRange(partition: number): Decoded {
  return partition < PARTITIONS ? { items: 0, writes: [] } : { items: 0, writes: [], refusable: true }
}

const bigValue = (store: StoreDef, v: Uint8Array | null) => v !== null && v.length > store.maxValueBytes
const coordinateItem = (pool: Pool, store: StoreDef): CoordinateItem => ({
  key: key(pool),
  value: value(pool, store.maxValueBytes),
  context: clock(pool),
  timestamp: timestamp(pool.prng),
})
const keySet = (pool: Pool, store: StoreDef): KeySet => ({ key: key(pool), siblings: siblings(pool, store.maxValueBytes) })
const writesOf = (store: StoreDef, coordinates: readonly CoordinateItem[], merges: readonly KeySet[]): Decoded => ({
  items: coordinates.length + merges.length,
  writes: [...coordinates.map((it) => it.key), ...merges.map((it) => it.key)],
  oversized: [...coordinates.map((it) => bigValue(store, it.value)), ...merges.map((it) => it.siblings.some((v) => bigValue(store, v.value)))],
})

/** What the fuzzer knows of one binary route beyond the table: valid arguments, their effect, and the check of the answer. */
interface FuzzOp<K extends keyof typeof PROTOCOL> {
  readonly name: string
  valid(pool: Pool, store: StoreDef): OpArgs<K>
  effect(args: OpArgs<K>, store: StoreDef): Decoded
  check(answer: OpAnswer<K>, req: Decoded): Answer
}

/** Hint targets of the table's routes. */
const TARGET = 'n2'

const FUZZ: { readonly [K in 'mergePut' | 'get' | 'batch' | 'scan' | 'listTombstones' | 'reap' | 'putHints' | 'deleteHints']: FuzzOp<K> } = {
  mergePut: {
    name: 'merge',
    valid: (pool, store) => [store.name, Array.from({ length: batchSize(pool.prng) }, () => keySet(pool, store))],
    effect: ([, items], store) => writesOf(store, [], items),
    check: writeResults,
  },
  get: {
    name: 'get',
    valid: (pool, store) => [store.name, Array.from({ length: batchSize(pool.prng) }, () => key(pool))],
    effect: ([, keys]) => ({ items: keys.length, writes: [] }),
    check: (results, req) => {
      const problem = counted(results.length, req)
      return { ...(problem ? { problem } : {}), written: [] }
    },
  },
  batch: {
    name: 'batch',
    valid: (pool, store) => {
      const n = () => pool.prng.int(Math.max(1, Math.ceil(batchSize(pool.prng) / 2)))
      return [
        store.name,
        {
          keys: Array.from({ length: n() }, () => key(pool)),
          coordinates: Array.from({ length: n() }, () => coordinateItem(pool, store)),
          merges: Array.from({ length: n() }, () => keySet(pool, store)),
        },
      ]
    },
    // Writes in answer order: coordinate-puts, then merges.
    effect: ([, b], store) => {
      const w = writesOf(store, b.coordinates, b.merges)
      return { ...w, items: w.items + b.keys.length }
    },
    check: (res, req) => {
      const written = writeResults([...res.coordinates, ...res.merges], { ...req, items: req.items - res.gets.length })
      const problem = counted(res.gets.length + res.coordinates.length + res.merges.length, req) ?? written.problem
      return { ...(problem ? { problem } : {}), written: written.written }
    },
  },
  scan: {
    name: 'scan',
    valid: (pool, store) => {
      const { prng } = pool
      const segments = prng.chance(0.5) ? Array.from({ length: prng.size(8) }, () => prng.int(1 << LIMITS.segmentBits)) : undefined
      const after = prng.chance(0.3) ? key(pool) : undefined
      return [
        store.name,
        {
          partition: prng.int(PARTITIONS),
          limit: prng.range(1, 200),
          headsOnly: prng.chance(0.5),
          ...(segments ? { segments } : {}),
          ...(after ? { after } : {}),
        },
      ]
    },
    effect: ([, req]) => inRange(req.partition),
    check: () => ({ written: [] }),
  },
  listTombstones: {
    name: 'tombstones',
    valid: (pool, store) => [store.name, { partition: pool.prng.int(PARTITIONS), beforeMs: timestamp(pool.prng), limit: pool.prng.range(1, 100) }],
    effect: ([, req]) => inRange(req.partition),
    check: () => ({ written: [] }),
  },
  reap: {
    name: 'reap',
    // Tombstone sets, so that a reap can match what is stored.
    valid: (pool, store) => [
      store.name,
      Array.from({ length: batchSize(pool.prng) }, () => ({
        key: key(pool),
        siblings: siblings(pool, store.maxValueBytes).map((v) => ({ ...v, value: null })),
      })),
    ],
    effect: ([, items]) => ({ items: items.length, writes: items.map((it) => it.key) }),
    check: (reaped, req) =>
      Number.isInteger(reaped) ? { written: req.writes } : { problem: `answer has no number reaped: ${String(reaped)}`, written: req.writes },
  },
  putHints: {
    name: 'hints',
    valid: (pool) => [
      TARGET,
      Array.from({ length: batchSize(pool.prng) }, () => {
        const store = pool.prng.pick(pool.stores)
        return { store: store.name, key: key(pool), siblings: siblings(pool, store.maxValueBytes) }
      }),
    ],
    // Hints are kept apart from the stores' data: they change no Merkle root.
    effect: ([, hints]) => {
      const known = hints.every((h) => STORES.some((s) => s.name === h.store))
      return { items: hints.length, writes: [], ...(known ? {} : { refusable: true }) }
    },
    check: (results, req) => {
      const problem = counted(results.length, req)
      return { ...(problem ? { problem } : {}), written: [] }
    },
  },
  deleteHints: {
    name: 'ack',
    valid: (pool) => [TARGET, Array.from({ length: pool.prng.size(8) }, () => ({ id: counter(pool.prng), seq: pool.prng.range(1, 3) }))],
    effect: ([, acks]) => ({ items: acks.length, writes: [] }),
    check: (deleted) => (Number.isInteger(deleted) ? { written: [] } : { problem: `answer has no number deleted: ${String(deleted)}`, written: [] }),
  },
}

/** A fuzz route from the protocol's table (method, path, codecs) and what the fuzzer knows of it. */
function binaryRoute<K extends keyof typeof FUZZ>(op: K): BinaryRoute {
  const route = PROTOCOL[op] as unknown as Route<K>
  const fuzz = FUZZ[op] as unknown as FuzzOp<K>
  const params = (store: string, target: string) => ({ store, target })
  return {
    name: fuzz.name,
    path: (store, target) => callPath(route as unknown as Route, { params: params(store, target) }),
    valid: (pool, store) => {
      const call = (route.encodeRequest as (...a: unknown[]) => { body?: Uint8Array })(...fuzz.valid(pool, store))
      if (!call.body) throw new Error(`assertion failed: ${route.path} has no binary body`)
      return call.body
    },
    decode: (bytes, store) => fuzz.effect(route.decodeRequest({ params: params(store.name, TARGET), query: {}, body: bytes }), store),
    answer: (body, req) => fuzz.check(route.decodeAnswer(body), req),
  }
}

const binaryOps = ROUTE_LIST.filter((r) => r.request === 'binary').map((r) => r.op)
// A binary route added to the table must be taught to the fuzzer.
for (const op of binaryOps) if (!(op in FUZZ)) throw new Error(`assertion failed: the fuzzer has no entry for ${op}, a binary route of the protocol's table`)

/** The binary POST routes of the node protocol, in table order. */
export const ROUTES: readonly BinaryRoute[] = (binaryOps as (keyof typeof FUZZ)[]).map(binaryRoute)
