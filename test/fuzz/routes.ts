import {
  type StoreDef, LIMITS,
  decodeAckResults, decodeAcks, decodeCoordinate, decodeCoordinateResults, decodeHints, decodeKeySets, decodeKeys,
  decodeScanPage, decodeScanRequest, decodeSetResults, decodeStoreBatch, decodeStoreBatchResults, decodeTombstoneRequest, encodeStoreBatch,
  encodeAcks, encodeCoordinate, encodeHints, encodeKeySets, encodeKeys, encodeScanRequest, encodeTombstoneRequest,
} from '@kvorum/core'
import { type Pool, batchSize, clock, counter, key, siblings, timestamp, value } from './gen.js'
import { PARTITIONS, STORES } from './target.js'

/** A binary body the node would take: the keys it may write (empty for reads) and how many items it holds. */
export interface Decoded {
  readonly items: number
  readonly writes: readonly Uint8Array[]
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

/** Keys of items the answer reports as ok: an item refused on its own must not have been written. */
function okKeys(results: readonly { ok: boolean }[], keys: readonly Uint8Array[]): Uint8Array[] {
  return keys.filter((_, i) => results[i]?.ok !== false)
}

function json(body: Uint8Array, field: string): string | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(body).toString()) as Record<string, unknown>
    return typeof parsed[field] === 'number' ? undefined : `answer has no number ${field}: ${Buffer.from(body).toString().slice(0, 100)}`
  } catch {
    return 'answer is not JSON'
  }
}

/** A read of one partition: the engine refuses partitions past Q. */
function inRange(partition: number): Decoded {
  return partition < PARTITIONS ? { items: 0, writes: [] } : { items: 0, writes: [], refusable: true }
}

const storePath = (op: string) => (store: string) => `/v1/stores/${store}/${op}`

export const ROUTES: readonly BinaryRoute[] = [
  {
    name: 'coordinate',
    path: storePath('coordinate'),
    valid: (pool, store) =>
      encodeCoordinate(Array.from({ length: batchSize(pool.prng) }, () => ({ key: key(pool), value: value(pool, store.maxValueBytes), context: clock(pool), timestamp: timestamp(pool.prng) }))),
    decode: (bytes, store) => {
      const items = decodeCoordinate(bytes, store.maxValueBytes)
      return { items: items.length, writes: items.map((it) => it.key) }
    },
    answer: (body, req) => {
      const results = decodeCoordinateResults(body)
      const problem = counted(results.length, req)
      return { ...(problem ? { problem } : {}), written: okKeys(results, req.writes) }
    },
  },
  {
    name: 'merge',
    path: storePath('merge'),
    valid: (pool, store) => encodeKeySets(Array.from({ length: batchSize(pool.prng) }, () => ({ key: key(pool), siblings: siblings(pool, store.maxValueBytes) }))),
    decode: (bytes, store) => {
      const items = decodeKeySets(bytes, store.maxValueBytes, 1000)
      return { items: items.length, writes: items.map((it) => it.key) }
    },
    answer: (body, req) => {
      const results = decodeAckResults(body)
      const problem = counted(results.length, req)
      return { ...(problem ? { problem } : {}), written: okKeys(results, req.writes) }
    },
  },
  {
    name: 'get',
    path: storePath('get'),
    valid: (pool) => encodeKeys(Array.from({ length: batchSize(pool.prng) }, () => key(pool))),
    decode: (bytes) => ({ items: decodeKeys(bytes).length, writes: [] }),
    answer: (body, req) => {
      const problem = counted(decodeSetResults(body).length, req)
      return { ...(problem ? { problem } : {}), written: [] }
    },
  },
  {
    name: 'batch',
    path: storePath('batch'),
    valid: (pool, store) => {
      const n = () => pool.prng.int(Math.max(1, Math.ceil(batchSize(pool.prng) / 2)))
      return encodeStoreBatch({
        keys: Array.from({ length: n() }, () => key(pool)),
        coordinates: Array.from({ length: n() }, () => ({ key: key(pool), value: value(pool, store.maxValueBytes), context: clock(pool), timestamp: timestamp(pool.prng) })),
        merges: Array.from({ length: n() }, () => ({ key: key(pool), siblings: siblings(pool, store.maxValueBytes) })),
      })
    },
    decode: (bytes, store) => {
      const b = decodeStoreBatch(bytes, store.maxValueBytes, 1000)
      // Writes in answer order: coordinate-puts, then merges.
      return { items: b.keys.length + b.coordinates.length + b.merges.length, writes: [...b.coordinates.map((it) => it.key), ...b.merges.map((it) => it.key)] }
    },
    answer: (body, req) => {
      const res = decodeStoreBatchResults(body)
      const problem = counted(res.gets.length + res.coordinates.length + res.merges.length, req)
      return { ...(problem ? { problem } : {}), written: okKeys([...res.coordinates, ...res.merges], req.writes) }
    },
  },
  {
    name: 'scan',
    path: storePath('scan'),
    valid: (pool) => {
      const { prng } = pool
      const segments = prng.chance(0.5) ? Array.from({ length: prng.size(8) }, () => prng.int(1 << LIMITS.segmentBits)) : undefined
      const after = prng.chance(0.3) ? key(pool) : undefined
      return encodeScanRequest({ partition: prng.int(PARTITIONS), limit: prng.range(1, 200), headsOnly: prng.chance(0.5), ...(segments ? { segments } : {}), ...(after ? { after } : {}) })
    },
    decode: (bytes) => inRange(decodeScanRequest(bytes).partition),
    answer: (body) => {
      decodeScanPage(body)
      return { written: [] }
    },
  },
  {
    name: 'tombstones',
    path: storePath('tombstones'),
    valid: (pool) => encodeTombstoneRequest({ partition: pool.prng.int(PARTITIONS), beforeMs: timestamp(pool.prng), limit: pool.prng.range(1, 100) }),
    decode: (bytes) => inRange(decodeTombstoneRequest(bytes).partition),
    answer: (body) => {
      decodeKeySets(body, LIMITS.maxValueBytesCeiling, 100_000)
      return { written: [] }
    },
  },
  {
    name: 'reap',
    path: storePath('reap'),
    // Tombstone sets, so that a reap can match what is stored.
    valid: (pool, store) =>
      encodeKeySets(Array.from({ length: batchSize(pool.prng) }, () => ({ key: key(pool), siblings: siblings(pool, store.maxValueBytes).map((v) => ({ ...v, value: null })) }))),
    decode: (bytes, store) => {
      const items = decodeKeySets(bytes, store.maxValueBytes, 1000)
      return { items: items.length, writes: items.map((it) => it.key) }
    },
    answer: (body, req) => {
      const problem = json(body, 'reaped')
      return { ...(problem ? { problem } : {}), written: req.writes }
    },
  },
  {
    name: 'hints',
    path: (_store, target) => `/v1/hints/${target}`,
    valid: (pool) =>
      encodeHints(Array.from({ length: batchSize(pool.prng) }, () => {
        const store = pool.prng.pick(pool.stores)
        return { store: store.name, key: key(pool), siblings: siblings(pool, store.maxValueBytes) }
      })),
    // Hints are kept apart from the stores' data: they change no Merkle root.
    decode: (bytes) => {
      const hints = decodeHints(bytes)
      const known = hints.every((h) => STORES.some((s) => s.name === h.store))
      return { items: hints.length, writes: [], ...(known ? {} : { refusable: true }) }
    },
    answer: (body, req) => {
      const problem = counted(decodeAckResults(body).length, req)
      return { ...(problem ? { problem } : {}), written: [] }
    },
  },
  {
    name: 'ack',
    path: (_store, target) => `/v1/hints/${target}/ack`,
    valid: (pool) => encodeAcks(Array.from({ length: pool.prng.size(8) }, () => ({ id: counter(pool.prng), seq: pool.prng.range(1, 3) }))),
    decode: (bytes) => ({ items: decodeAcks(bytes).length, writes: [] }),
    answer: (body) => {
      const problem = json(body, 'deleted')
      return { ...(problem ? { problem } : {}), written: [] }
    },
  },
]
