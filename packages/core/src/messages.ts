import { receivedError } from './error-wire.js'
import { InvalidInputError } from './errors.js'
import { Reader, Writer, decodeSet, readActor, readClock, readPayload, readSet, sizeHint, writeClock, writePayload, writeSet } from './codec.js'
import { LIMITS } from './limits.js'
import type {
  CoordinateItem,
  CoordinateResult,
  HintItem,
  ItemResult,
  KeySet,
  ScanPage,
  ScanRequest,
  StoreBatch,
  StoreBatchResults,
  StoredHint,
  TombstoneRequest,
} from './protocol.js'
import type { SiblingSet } from './versions.js'

/**
 * Binary bodies of the node protocol. Every decoder checks each size against
 * the protocol's ceilings in LIMITS and rejects trailing bytes, so a malformed
 * frame is an InvalidInputError before anything is stored. A store's own
 * (lower) limits are the storage engine's to check, item by item, so that
 * every face of a node refuses the same item the same way.
 */

/**
 * A read answered from storage: `bytes` is the set as stored (its wire
 * encoding); the set itself is decoded only when `value` is first read. The
 * encoders below send the stored bytes as they are, so a node answering over
 * HTTP never decodes a set it only passes on, while in-process callers see an
 * ordinary ItemResult. A class rather than a WeakMap from answer to bytes:
 * the map's upkeep showed as ~2 µs per read in a node's profile.
 */
class StoredRead {
  readonly ok = true as const
  #set: SiblingSet | undefined
  constructor(
    readonly bytes: Uint8Array,
    decoded?: SiblingSet,
  ) {
    this.#set = decoded
  }
  get value(): SiblingSet {
    this.#set ??= decodeSet(this.bytes)
    return this.#set
  }
}

/** A read answered from storage (see StoredRead). */
export function storedRead(bytes: Uint8Array, decoded?: SiblingSet): ItemResult<SiblingSet> {
  return new StoredRead(bytes, decoded)
}

function readKey(r: Reader): Uint8Array {
  const key = r.bytes(LIMITS.maxKeyBytes, 'key bytes')
  if (key.length === 0) throw new InvalidInputError(`key must be 1..${LIMITS.maxKeyBytes} bytes, got 0`)
  return key
}

/** A 0/1 flag byte; anything else is a malformed frame. */
function flag(r: Reader, what: string): number {
  const b = r.byte()
  if (b > 1) throw new InvalidInputError(`malformed frame: ${what} flag must be 0 or 1, got ${b}`)
  return b
}

function frame(body: (w: Writer) => void, capacity?: number): Uint8Array {
  const w = new Writer(capacity)
  body(w)
  return w.finish()
}

function parse<T>(bytes: Uint8Array, body: (r: Reader) => T): T {
  const r = new Reader(bytes)
  const out = body(r)
  r.end()
  return out
}

function writeCoordinateItems(w: Writer, items: readonly CoordinateItem[]): void {
  w.uint(items.length)
  for (const it of items) {
    w.bytes(it.key).uint(it.timestamp)
    writeClock(w, it.context)
    // A write carries its ttl where a version carries its expiresAt (the coordinator turns one into the other).
    writePayload(w, it.value, it.ttlMs)
  }
}

function coordinateItemsSize(items: readonly CoordinateItem[]): number {
  return items.reduce((n, it) => n + 64 + it.key.length + (it.value?.length ?? 0) + 24 * Object.keys(it.context).length, 16)
}

function readCoordinateItems(r: Reader, maxItems: number): CoordinateItem[] {
  const n = r.count(maxItems, 'batch items')
  const out: CoordinateItem[] = []
  for (let i = 0; i < n; i++) {
    const key = readKey(r)
    const timestamp = r.uint()
    const context = readClock(r)
    const { value, expiresAt: ttlMs } = readPayload(r, LIMITS.maxValueBytesCeiling)
    out.push(ttlMs === undefined ? { key, timestamp, context, value } : { key, timestamp, context, value, ttlMs })
  }
  return out
}

export function encodeCoordinate(items: readonly CoordinateItem[]): Uint8Array {
  return frame((w) => writeCoordinateItems(w, items), coordinateItemsSize(items))
}

export function decodeCoordinate(bytes: Uint8Array): CoordinateItem[] {
  return parse(bytes, (r) => readCoordinateItems(r, LIMITS.maxBatchItems))
}

function writeKeySets(w: Writer, items: readonly KeySet[]): void {
  w.uint(items.length)
  for (const it of items) writeSet(w.bytes(it.key), it.siblings)
}

function keySetsSize(items: readonly KeySet[]): number {
  return items.reduce((n, it) => n + it.key.length + sizeHint(it.siblings), 16)
}

function readKeySets(r: Reader, maxItems: number): KeySet[] {
  const n = r.count(maxItems, 'batch items')
  const out: KeySet[] = []
  for (let i = 0; i < n; i++) out.push({ key: readKey(r), siblings: readSet(r, LIMITS.maxValueBytesCeiling, LIMITS.maxSiblingsCeiling) })
  return out
}

export function encodeKeySets(items: readonly KeySet[]): Uint8Array {
  return frame((w) => writeKeySets(w, items), keySetsSize(items))
}

export function decodeKeySets(bytes: Uint8Array): KeySet[] {
  return parse(bytes, (r) => readKeySets(r, LIMITS.maxBatchItems))
}

export function encodeHints(items: readonly HintItem[]): Uint8Array {
  return frame((w) => {
    w.uint(items.length)
    for (const it of items) writeSet(w.string(it.store).bytes(it.key), it.siblings)
  })
}

export function decodeHints(bytes: Uint8Array): HintItem[] {
  return parse(bytes, (r) => {
    const n = r.count(LIMITS.maxBatchItems, 'batch items')
    const out: HintItem[] = []
    for (let i = 0; i < n; i++) {
      const store = r.string(LIMITS.maxStoreNameLength, 'store name')
      out.push({ store, key: readKey(r), siblings: readSet(r, LIMITS.maxValueBytesCeiling) })
    }
    return out
  })
}

export function encodeStoredHints(hints: readonly StoredHint[]): Uint8Array {
  return frame((w) => {
    w.uint(hints.length)
    for (const h of hints) writeSet(w.uint(h.id).uint(h.seq).uint(h.createdMs).string(h.store).bytes(h.key), h.siblings)
  })
}

export function decodeStoredHints(bytes: Uint8Array): StoredHint[] {
  return parse(bytes, (r) => {
    const n = r.count(LIMITS.maxPageItems, 'hints')
    const out: StoredHint[] = []
    for (let i = 0; i < n; i++) {
      const id = r.uint()
      const seq = r.uint()
      const createdMs = r.uint()
      const store = r.string(LIMITS.maxStoreNameLength, 'store name')
      out.push({ id, seq, createdMs, store, key: readKey(r), siblings: readSet(r, LIMITS.maxValueBytesCeiling) })
    }
    return out
  })
}

function writeKeys(w: Writer, keys: readonly Uint8Array[]): void {
  w.uint(keys.length)
  for (const k of keys) w.bytes(k)
}

function readKeys(r: Reader, maxItems: number): Uint8Array[] {
  const n = r.count(maxItems, 'batch items')
  return Array.from({ length: n }, () => readKey(r))
}

export function encodeKeys(keys: readonly Uint8Array[]): Uint8Array {
  return frame(
    (w) => writeKeys(w, keys),
    keys.reduce((n, k) => n + k.length + 4, 16),
  )
}

export function decodeKeys(bytes: Uint8Array): Uint8Array[] {
  return parse(bytes, (r) => readKeys(r, LIMITS.maxBatchItems))
}

function writeItemError(w: Writer, res: ItemResult<unknown>): boolean {
  if (res.ok) {
    w.byte(0)
    return false
  }
  w.byte(1)
    .string(res.error.code)
    .string(res.error.message)
    .uint(res.error.clusterVersion ?? 0)
  return true
}

function readItem<T>(r: Reader, value: (r: Reader) => T): ItemResult<T> {
  const status = r.byte()
  if (status === 0) return { ok: true, value: value(r) }
  if (status !== 1) throw new InvalidInputError(`malformed frame: bad item status ${status}`)
  const code = r.string(LIMITS.maxErrorCodeBytes, 'error code')
  const message = r.string(LIMITS.maxErrorMessageBytes, 'error message')
  const clusterVersion = r.uint()
  return { ok: false, error: receivedError(clusterVersion > 0 ? { code, message, clusterVersion } : { code, message }) }
}

/** Read answers; a stored read's set goes out as its stored bytes, undecoded. */
function writeSetResults(w: Writer, results: readonly ItemResult<SiblingSet>[]): void {
  w.uint(results.length)
  for (const res of results) {
    if (writeItemError(w, res) || !res.ok) continue
    if (res instanceof StoredRead) w.raw(res.bytes)
    else writeSet(w, res.value)
  }
}

const resultsSize = <T>(results: readonly ItemResult<T>[], size: (value: T) => number) => results.reduce((n, res) => n + (res.ok ? size(res.value) : 256), 16)

/** Size hint of read answers, from the stored bytes where there are some (without decoding them). */
const setResultsSize = (results: readonly ItemResult<SiblingSet>[]) =>
  results.reduce((n, res) => n + (res instanceof StoredRead ? res.bytes.length : res.ok ? sizeHint(res.value) : 256), 16)

function readSetResults(r: Reader): ItemResult<SiblingSet>[] {
  const n = r.count(LIMITS.maxBatchItems, 'batch items')
  return Array.from({ length: n }, () => readItem(r, (rr) => readSet(rr, LIMITS.maxValueBytesCeiling, LIMITS.maxSiblingsDecoded)))
}

export function encodeSetResults(results: readonly ItemResult<SiblingSet>[]): Uint8Array {
  return frame((w) => writeSetResults(w, results), setResultsSize(results))
}

export function decodeSetResults(bytes: Uint8Array): ItemResult<SiblingSet>[] {
  return parse(bytes, readSetResults)
}

function writeCoordinateResults(w: Writer, results: readonly ItemResult<CoordinateResult>[]): void {
  w.uint(results.length)
  for (const res of results) {
    if (writeItemError(w, res) || !res.ok) continue
    w.string(res.value.dot.actor).uint(res.value.dot.counter)
    writeSet(w, res.value.siblings)
  }
}

function readCoordinateResults(r: Reader): ItemResult<CoordinateResult>[] {
  const n = r.count(LIMITS.maxBatchItems, 'batch items')
  return Array.from({ length: n }, () =>
    readItem(r, (rr) => {
      const dot = { actor: readActor(rr), counter: rr.uint() }
      // The new dot may be absent: in an lww store a write older than a stored version loses at once.
      return { dot, siblings: readSet(rr, LIMITS.maxValueBytesCeiling, LIMITS.maxSiblingsDecoded) }
    }),
  )
}

function writeAckResults(w: Writer, results: readonly ItemResult<null>[]): void {
  w.uint(results.length)
  for (const res of results) writeItemError(w, res)
}

function readAckResults(r: Reader): ItemResult<null>[] {
  const n = r.count(LIMITS.maxBatchItems, 'batch items')
  return Array.from({ length: n }, () => readItem(r, () => null))
}

export function encodeAckResults(results: readonly ItemResult<null>[]): Uint8Array {
  return frame((w) => writeAckResults(w, results))
}

export function decodeAckResults(bytes: Uint8Array): ItemResult<null>[] {
  return parse(bytes, readAckResults)
}

/**
 * A store batch: reads, writes to coordinate and sets to merge for one store
 * in one request, so the SDK's concurrent operations bound for a node share
 * one round trip (and one group commit). The three sections are the bodies of
 * the get, coordinate and merge frames, one after another, behind the
 * sender's cluster version (for fencing); together they hold at most
 * LIMITS.maxBatchItems items.
 */
export function encodeStoreBatch(batch: StoreBatch): Uint8Array {
  return frame(
    (w) => {
      w.uint(batch.version ?? 0)
      writeKeys(w, batch.keys)
      writeCoordinateItems(w, batch.coordinates)
      writeKeySets(w, batch.merges)
    },
    8 + batch.keys.reduce((n, k) => n + k.length + 4, 0) + coordinateItemsSize(batch.coordinates) + keySetsSize(batch.merges),
  )
}

export function decodeStoreBatch(bytes: Uint8Array): StoreBatch {
  return parse(bytes, (r) => {
    const version = r.uint()
    const keys = readKeys(r, LIMITS.maxBatchItems)
    const coordinates = readCoordinateItems(r, LIMITS.maxBatchItems - keys.length)
    const merges = readKeySets(r, LIMITS.maxBatchItems - keys.length - coordinates.length)
    return version > 0 ? { version, keys, coordinates, merges } : { keys, coordinates, merges }
  })
}

/** The answers to a store batch, section by section, in the order of its items. */
export function encodeStoreBatchResults(results: StoreBatchResults): Uint8Array {
  return frame(
    (w) => {
      writeSetResults(w, results.gets)
      writeCoordinateResults(w, results.coordinates)
      writeAckResults(w, results.merges)
    },
    setResultsSize(results.gets) + resultsSize(results.coordinates, (v) => 32 + sizeHint(v.siblings)) + 16,
  )
}

export function decodeStoreBatchResults(bytes: Uint8Array): StoreBatchResults {
  return parse(bytes, (r) => ({ gets: readSetResults(r), coordinates: readCoordinateResults(r), merges: readAckResults(r) }))
}

export function encodeScanRequest(req: ScanRequest): Uint8Array {
  return frame((w) => {
    w.uint(req.partition).uint(req.limit)
    w.uint(req.segments?.length ?? 0)
    for (const s of req.segments ?? []) w.uint(s)
    if (req.after) w.byte(1).bytes(req.after)
    else w.byte(0)
    w.byte(req.headsOnly ? 1 : 0)
    // The sender's definition version, 0 for none (as a store batch carries it).
    w.uint(req.version ?? 0)
  })
}

export function decodeScanRequest(bytes: Uint8Array): ScanRequest {
  return parse(bytes, (r) => {
    const partition = r.uint()
    const limit = r.uint()
    if (limit < 1 || limit > LIMITS.maxPageItems) throw new InvalidInputError(`scan limit must be 1..${LIMITS.maxPageItems}`)
    const segCount = r.count(1 << LIMITS.segmentBits, 'segments')
    const segments = Array.from({ length: segCount }, () => {
      const seg = r.uint()
      if (seg >= 1 << LIMITS.segmentBits) throw new InvalidInputError(`segment ${seg} is out of range 0..${(1 << LIMITS.segmentBits) - 1}`)
      return seg
    })
    const hasAfter = flag(r, 'after')
    const after = hasAfter === 1 ? readKey(r) : undefined
    const headsOnly = flag(r, 'headsOnly') === 1
    const version = r.uint()
    const base = segCount > 0 ? { partition, limit, segments, headsOnly } : { partition, limit, headsOnly }
    const fenced = version > 0 ? { ...base, version } : base
    return after ? { ...fenced, after } : fenced
  })
}

export function encodeScanPage(page: ScanPage): Uint8Array {
  return frame((w) => {
    w.uint(page.items.length)
    for (const it of page.items) writeSet(w.bytes(it.key), it.siblings)
    if (page.next) w.byte(1).bytes(page.next)
    else w.byte(0)
  })
}

export function decodeScanPage(bytes: Uint8Array): ScanPage {
  return parse(bytes, (r) => {
    const n = r.count(LIMITS.maxPageItems, 'scan items')
    const items: KeySet[] = []
    for (let i = 0; i < n; i++) items.push({ key: readKey(r), siblings: readSet(r, LIMITS.maxValueBytesCeiling, LIMITS.maxSiblingsDecoded) })
    const next = flag(r, 'next') === 1 ? readKey(r) : undefined
    return next ? { items, next } : { items }
  })
}

export function encodeAcks(acks: readonly { id: number; seq: number }[]): Uint8Array {
  return frame((w) => {
    w.uint(acks.length)
    for (const a of acks) w.uint(a.id).uint(a.seq)
  })
}

export function decodeAcks(bytes: Uint8Array): { id: number; seq: number }[] {
  return parse(bytes, (r) => {
    const n = r.count(LIMITS.maxPageItems, 'hint acks')
    return Array.from({ length: n }, () => ({ id: r.uint(), seq: r.uint() }))
  })
}

export function encodeTombstoneRequest(req: TombstoneRequest): Uint8Array {
  return frame((w) => w.uint(req.partition).uint(req.beforeMs).uint(req.limit))
}

export function decodeTombstoneRequest(bytes: Uint8Array): TombstoneRequest {
  return parse(bytes, (r) => {
    const req = { partition: r.uint(), beforeMs: r.uint(), limit: r.uint() }
    if (req.limit < 1 || req.limit > LIMITS.maxPageItems) throw new InvalidInputError(`tombstone page limit must be 1..${LIMITS.maxPageItems}`)
    return req
  })
}
