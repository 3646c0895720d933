import { InvalidInputError } from './errors.js'
import { Reader, Writer, readClock, readSet, sizeHint, writeClock, writeSet } from './codec.js'
import { LIMITS } from './limits.js'
import type { CoordinateItem, CoordinateResult, HintItem, ItemResult, KeySet, ScanPage, ScanRequest, StoredHint, TombstoneRequest } from './protocol.js'
import type { SiblingSet } from './versions.js'

/**
 * Binary bodies of the node protocol. Every decoder checks each size against
 * LIMITS (or the store's own) and rejects trailing bytes, so a malformed frame
 * is an InvalidInputError before anything is stored.
 */

function readKey(r: Reader): Uint8Array {
  const key = r.bytes(LIMITS.maxKeyBytes, 'key bytes')
  if (key.length === 0) throw new InvalidInputError('key must be 1..1024 bytes, got 0')
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

export function encodeCoordinate(items: readonly CoordinateItem[]): Uint8Array {
  return frame((w) => {
    w.uint(items.length)
    for (const it of items) {
      w.bytes(it.key).uint(it.timestamp)
      writeClock(w, it.context)
      if (it.value === null) w.byte(1)
      else w.byte(0).bytes(it.value)
    }
  }, items.reduce((n, it) => n + 64 + it.key.length + (it.value?.length ?? 0) + 24 * Object.keys(it.context).length, 16))
}

export function decodeCoordinate(bytes: Uint8Array, maxValueBytes: number): CoordinateItem[] {
  return parse(bytes, (r) => {
    const n = r.count(LIMITS.maxBatchItems, 'batch items')
    const out: CoordinateItem[] = []
    for (let i = 0; i < n; i++) {
      const key = readKey(r)
      const timestamp = r.uint()
      const context = readClock(r)
      const flag = r.byte()
      if (flag > 1) throw new InvalidInputError(`malformed frame: bad tombstone flag ${flag}`)
      const value = flag === 1 ? null : r.bytes(maxValueBytes, `value bytes (store limit ${maxValueBytes})`)
      out.push({ key, timestamp, context, value })
    }
    return out
  })
}

export function encodeKeySets(items: readonly KeySet[]): Uint8Array {
  return frame((w) => {
    w.uint(items.length)
    for (const it of items) writeSet(w.bytes(it.key), it.siblings)
  }, items.reduce((n, it) => n + it.key.length + sizeHint(it.siblings), 16))
}

export function decodeKeySets(bytes: Uint8Array, maxValueBytes: number, maxSiblings: number): KeySet[] {
  return parse(bytes, (r) => {
    const n = r.count(LIMITS.maxBatchItems, 'batch items')
    const out: KeySet[] = []
    for (let i = 0; i < n; i++) out.push({ key: readKey(r), siblings: readSet(r, maxValueBytes, maxSiblings) })
    return out
  })
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
    const n = r.count(100_000, 'hints')
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

export function encodeKeys(keys: readonly Uint8Array[]): Uint8Array {
  return frame((w) => {
    w.uint(keys.length)
    for (const k of keys) w.bytes(k)
  })
}

export function decodeKeys(bytes: Uint8Array): Uint8Array[] {
  return parse(bytes, (r) => {
    const n = r.count(LIMITS.maxBatchItems, 'batch items')
    return Array.from({ length: n }, () => readKey(r))
  })
}

function writeItemError(w: Writer, res: ItemResult<unknown>): boolean {
  if (res.ok) {
    w.byte(0)
    return false
  }
  w.byte(1).string(res.error.code).string(res.error.message).uint(res.error.clusterVersion ?? 0)
  return true
}

function readItem<T>(r: Reader, value: (r: Reader) => T): ItemResult<T> {
  const status = r.byte()
  if (status === 0) return { ok: true, value: value(r) }
  if (status !== 1) throw new InvalidInputError(`malformed frame: bad item status ${status}`)
  const code = r.string(64, 'error code')
  const message = r.string(4096, 'error message')
  const clusterVersion = r.uint()
  return { ok: false, error: clusterVersion > 0 ? { code, message, clusterVersion } : { code, message } }
}

export function encodeSetResults(results: readonly ItemResult<SiblingSet>[]): Uint8Array {
  return frame((w) => {
    w.uint(results.length)
    for (const res of results) if (!writeItemError(w, res) && res.ok) writeSet(w, res.value)
  }, results.reduce((n, res) => n + (res.ok ? sizeHint(res.value) : 256), 16))
}

/** Like encodeSetResults, for sets already encoded (as the storage engine keeps them): no decoding on the way out. */
export function encodeEncodedSetResults(results: readonly ItemResult<Uint8Array>[]): Uint8Array {
  return frame((w) => {
    w.uint(results.length)
    for (const res of results) if (!writeItemError(w, res) && res.ok) w.raw(res.value)
  }, results.reduce((n, res) => n + (res.ok ? res.value.length : 256), 16))
}

export function decodeSetResults(bytes: Uint8Array): ItemResult<SiblingSet>[] {
  return parse(bytes, (r) => {
    const n = r.count(LIMITS.maxBatchItems, 'batch items')
    return Array.from({ length: n }, () => readItem(r, (rr) => readSet(rr, LIMITS.maxValueBytesCeiling, 100_000)))
  })
}

export function encodeCoordinateResults(results: readonly ItemResult<CoordinateResult>[]): Uint8Array {
  return frame((w) => {
    w.uint(results.length)
    for (const res of results) {
      if (writeItemError(w, res) || !res.ok) continue
      w.string(res.value.dot.actor).uint(res.value.dot.counter)
      writeSet(w, res.value.siblings)
    }
  }, results.reduce((n, res) => n + (res.ok ? 32 + sizeHint(res.value.siblings) : 256), 16))
}

export function decodeCoordinateResults(bytes: Uint8Array): ItemResult<CoordinateResult>[] {
  return parse(bytes, (r) => {
    const n = r.count(LIMITS.maxBatchItems, 'batch items')
    return Array.from({ length: n }, () =>
      readItem(r, (rr) => {
        const dot = { actor: rr.string(64, 'actor'), counter: rr.uint() }
        // The new dot may be absent: in an lww store a write older than a stored version loses at once.
        return { dot, siblings: readSet(rr, LIMITS.maxValueBytesCeiling, 100_000) }
      }))
  })
}

export function encodeAckResults(results: readonly ItemResult<null>[]): Uint8Array {
  return frame((w) => {
    w.uint(results.length)
    for (const res of results) writeItemError(w, res)
  })
}

export function decodeAckResults(bytes: Uint8Array): ItemResult<null>[] {
  return parse(bytes, (r) => {
    const n = r.count(LIMITS.maxBatchItems, 'batch items')
    return Array.from({ length: n }, () => readItem(r, () => null))
  })
}

export function encodeScanRequest(req: ScanRequest): Uint8Array {
  return frame((w) => {
    w.uint(req.partition).uint(req.limit)
    w.uint(req.segments?.length ?? 0)
    for (const s of req.segments ?? []) w.uint(s)
    if (req.after) w.byte(1).bytes(req.after)
    else w.byte(0)
    w.byte(req.headsOnly ? 1 : 0)
  })
}

export function decodeScanRequest(bytes: Uint8Array): ScanRequest {
  return parse(bytes, (r) => {
    const partition = r.uint()
    const limit = r.uint()
    if (limit < 1 || limit > 10_000) throw new InvalidInputError('scan limit must be 1..10000')
    const segCount = r.count(1 << LIMITS.segmentBits, 'segments')
    const segments = Array.from({ length: segCount }, () => {
      const seg = r.uint()
      if (seg >= 1 << LIMITS.segmentBits) throw new InvalidInputError(`segment ${seg} is out of range 0..${(1 << LIMITS.segmentBits) - 1}`)
      return seg
    })
    const hasAfter = flag(r, 'after')
    const after = hasAfter === 1 ? readKey(r) : undefined
    const headsOnly = flag(r, 'headsOnly') === 1
    const base = segCount > 0 ? { partition, limit, segments, headsOnly } : { partition, limit, headsOnly }
    return after ? { ...base, after } : base
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
    const n = r.count(10_000, 'scan items')
    const items: KeySet[] = []
    for (let i = 0; i < n; i++) items.push({ key: readKey(r), siblings: readSet(r, LIMITS.maxValueBytesCeiling, 100_000) })
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
    const n = r.count(10_000, 'hint acks')
    return Array.from({ length: n }, () => ({ id: r.uint(), seq: r.uint() }))
  })
}

export function encodeTombstoneRequest(req: TombstoneRequest): Uint8Array {
  return frame((w) => w.uint(req.partition).uint(req.beforeMs).uint(req.limit))
}

export function decodeTombstoneRequest(bytes: Uint8Array): TombstoneRequest {
  return parse(bytes, (r) => {
    const req = { partition: r.uint(), beforeMs: r.uint(), limit: r.uint() }
    if (req.limit < 1 || req.limit > 10_000) throw new InvalidInputError('tombstone page limit must be 1..10000')
    return req
  })
}
