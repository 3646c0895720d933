import { InvalidInputError } from './errors.js'
import type { Version, SiblingSet } from './versions.js'
import type { VersionVector } from './clock.js'
import { LIMITS } from './limits.js'

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** UTF-8 of short strings seen often (actor ids, error codes), kept so they are encoded once. */
const encodedStrings = new Map<string, Uint8Array>()

function encodedString(s: string): Uint8Array {
  if (s.length > 64) return encoder.encode(s)
  let bytes = encodedStrings.get(s)
  if (!bytes) {
    if (encodedStrings.size >= 4096) encodedStrings.clear()
    bytes = encoder.encode(s)
    encodedStrings.set(s, bytes)
  }
  return bytes
}

/** Runs of at most this many bytes are copied byte by byte (TypedArray#set costs more for them). */
const SHORT_COPY = 32

/** Appends primitives to a growing byte buffer. */
export class Writer {
  private buf: Uint8Array
  private len = 0

  /** `capacity`: the expected size, so that a large frame is not copied as it grows. */
  constructor(capacity = 256) {
    this.buf = new Uint8Array(Math.max(16, capacity))
  }

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.len + extra) size *= 2
    const next = new Uint8Array(size)
    next.set(this.buf.subarray(0, this.len))
    this.buf = next
  }

  byte(b: number): this {
    this.ensure(1)
    this.buf[this.len++] = b
    return this
  }

  /** Unsigned LEB128 of a safe integer. */
  uint(n: number): this {
    this.ensure(8)
    // Most varints are lengths and counts under 128: one byte, no range check beyond this.
    if (n >= 0 && n < 0x80 && (n | 0) === n) {
      this.buf[this.len++] = n
      return this
    }
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`assertion failed: varint out of range: ${n}`)
    while (n >= 0x80) {
      this.buf[this.len++] = (n % 0x80) | 0x80
      n = Math.floor(n / 0x80)
    }
    this.buf[this.len++] = n
    return this
  }

  bytes(b: Uint8Array): this {
    this.uint(b.length)
    return this.raw(b)
  }

  raw(b: Uint8Array): this {
    const n = b.length
    this.ensure(n)
    // A short run (an actor, a key) copies faster by hand than through TypedArray#set.
    if (n <= SHORT_COPY) for (let i = 0; i < n; i++) this.buf[this.len + i] = b[i] as number
    else this.buf.set(b, this.len)
    this.len += n
    return this
  }

  string(s: string): this {
    return this.bytes(encodedString(s))
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.len)
  }
}

/** Reads primitives from a frame; every overrun or malformed field is an InvalidInputError. */
export class Reader {
  private pos = 0
  constructor(private readonly buf: Uint8Array) {}

  private need(n: number, what: string): void {
    if (this.pos + n > this.buf.length) throw new InvalidInputError(`malformed frame: ${what} runs past the end (offset ${this.pos})`)
  }

  byte(): number {
    this.need(1, 'byte')
    return this.buf[this.pos++] as number
  }

  uint(): number {
    let n = 0
    let scale = 1
    for (let i = 0; i < 8; i++) {
      const b = this.byte()
      n += (b & 0x7f) * scale
      if ((b & 0x80) === 0) {
        if (!Number.isSafeInteger(n)) break
        return n
      }
      scale *= 0x80
    }
    throw new InvalidInputError(`malformed frame: varint too long at offset ${this.pos}`)
  }

  /** A count bounded by `max`, so a hostile frame cannot make us allocate. */
  count(max: number, what: string): number {
    const n = this.uint()
    if (n > max) throw new InvalidInputError(`${what}: ${n} is over the limit of ${max}`)
    return n
  }

  bytes(max: number, what: string): Uint8Array {
    const n = this.count(max, what)
    this.need(n, what)
    const out = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return out
  }

  raw(n: number, what: string): Uint8Array {
    this.need(n, what)
    const out = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return out
  }

  string(max: number, what: string): string {
    try {
      return decoder.decode(this.bytes(max, what))
    } catch (e) {
      if (e instanceof InvalidInputError) throw e
      throw new InvalidInputError(`${what}: not valid UTF-8`)
    }
  }

  /**
   * An actor id ([0-9a-z-]{1,max}, so plain ASCII) read without TextDecoder
   * or a regex, which cost more than the rest of a version's decoding; null,
   * with nothing consumed, for anything else (readActor then decodes it the
   * slow way and says what is wrong).
   */
  actor(max: number): string | null {
    const start = this.pos
    const n = this.buf[start]
    if (n === undefined || n < 1 || n > max || n >= 0x80 || start + 1 + n > this.buf.length) return null
    let s = ''
    for (let i = start + 1; i <= start + n; i++) {
      const c = this.buf[i] as number
      // 0-9, a-z, '-'
      if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a) || c === 0x2d)) return null
      s += String.fromCharCode(c)
    }
    this.pos = start + 1 + n
    return s
  }

  get done(): boolean {
    return this.pos === this.buf.length
  }

  end(): void {
    if (!this.done) throw new InvalidInputError(`malformed frame: ${this.buf.length - this.pos} trailing bytes`)
  }
}

const MAX_ACTOR = 64
const ACTOR = /^[0-9a-z-]{1,64}$/

export function readActor(r: Reader): string {
  return r.actor(MAX_ACTOR) ?? slowActor(r)
}

/** An actor the fast path did not take: decoded and checked in full, for the error it deserves. */
function slowActor(r: Reader): string {
  const actor = r.string(MAX_ACTOR, 'actor')
  if (!ACTOR.test(actor)) throw new InvalidInputError(`bad clock: actor ${JSON.stringify(actor)} is not [0-9a-z-]{1,64}`)
  return actor
}

function readCounter(r: Reader): number {
  const n = r.uint()
  if (n < 1) throw new InvalidInputError('bad clock: counters start at 1')
  return n
}

export function writeClock(w: Writer, vv: VersionVector): void {
  const actors = Object.keys(vv)
  if (actors.length > 1) actors.sort()
  w.uint(actors.length)
  for (const a of actors) w.string(a).uint(vv[a] as number)
}

export function readClock(r: Reader): VersionVector {
  const n = r.count(LIMITS.maxClockEntries, 'clock entries')
  const vv: Record<string, number> = {}
  for (let i = 0; i < n; i++) {
    const actor = readActor(r)
    if (Object.hasOwn(vv, actor)) throw new InvalidInputError(`bad clock: actor ${actor} appears twice`)
    vv[actor] = readCounter(r)
  }
  return vv
}

/** Bit of a value's flag byte: a tombstone, no value bytes follow. */
const TOMBSTONE = 1
/** Bit of a value's flag byte: an expiry (absolute wall-clock ms) follows. */
const EXPIRES = 2

/** A value or tombstone and its expiry, as written after a version's (or a write's) clock. */
export interface Payload {
  readonly value: Uint8Array | null
  readonly expiresAt?: number
}

/**
 * The flag byte, the expiry if any, then the value if any. Before expiry the
 * flag was only ever 0 or 1, so frames and rows written then read unchanged.
 */
export function writePayload(w: Writer, value: Uint8Array | null, expiresAt: number | undefined): void {
  w.byte((value === null ? TOMBSTONE : 0) | (expiresAt === undefined ? 0 : EXPIRES))
  if (expiresAt !== undefined) w.uint(expiresAt)
  if (value !== null) w.bytes(value)
}

export function readPayload(r: Reader, maxValueBytes: number): Payload {
  const flag = r.byte()
  if (flag > (TOMBSTONE | EXPIRES)) throw new InvalidInputError(`malformed frame: bad value flag ${flag}`)
  const expiresAt = flag & EXPIRES ? r.uint() : undefined
  const value = flag & TOMBSTONE ? null : r.bytes(maxValueBytes, 'value bytes')
  return expiresAt === undefined ? { value } : { value, expiresAt }
}

export function writeVersion(w: Writer, v: Version): void {
  w.string(v.dot.actor).uint(v.dot.counter).uint(v.timestamp)
  writeClock(w, v.context)
  writePayload(w, v.value, v.expiresAt)
}

export function readVersion(r: Reader, maxValueBytes: number): Version {
  const actor = readActor(r)
  const counter = readCounter(r)
  const timestamp = r.uint()
  const context = readClock(r)
  // readPayload inlined: spreading its object showed in profiles. Same fields, in the same order.
  const flag = r.byte()
  if (flag > (TOMBSTONE | EXPIRES)) throw new InvalidInputError(`malformed frame: bad value flag ${flag}`)
  const expiresAt = flag & EXPIRES ? r.uint() : undefined
  const value = flag & TOMBSTONE ? null : r.bytes(maxValueBytes, 'value bytes')
  const dot = { actor, counter }
  return expiresAt === undefined ? { dot, context, timestamp, value } : { dot, context, timestamp, value, expiresAt }
}

export function writeSet(w: Writer, set: SiblingSet): void {
  w.uint(set.length)
  for (const v of set) writeVersion(w, v)
}

/** A sibling set from the wire: bounded, and with no dot twice. */
export function readSet(r: Reader, maxValueBytes: number, maxSiblings: number = LIMITS.maxSiblings): Version[] {
  const n = r.count(maxSiblings, 'siblings')
  const out: Version[] = []
  // Small sets (nearly all) compare dots pairwise; building a string per dot for a Set cost more.
  const dots = n > 8 ? new Set<string>() : null
  for (let i = 0; i < n; i++) {
    const v = readVersion(r, maxValueBytes)
    const { actor, counter } = v.dot
    const twice = dots ? dots.has(`${actor}:${counter}`) : out.some((o) => o.dot.counter === counter && o.dot.actor === actor)
    if (twice) throw new InvalidInputError(`bad clock: dot ${actor}:${counter} appears twice in one sibling set`)
    dots?.add(`${actor}:${counter}`)
    out.push(v)
  }
  return out
}

/** About the encoded size of a set: values plus a generous allowance for dots and clocks. */
export function sizeHint(set: SiblingSet): number {
  let size = 16
  for (const v of set) size += 64 + (v.value?.length ?? 0) + 24 * Object.keys(v.context).length
  return size
}

/** Encode a whole sibling set as one blob (how the storage engine keeps it). */
export function encodeSet(set: SiblingSet): Uint8Array {
  const w = new Writer(sizeHint(set))
  writeSet(w, set)
  return w.finish()
}

export function decodeSet(bytes: Uint8Array): Version[] {
  const r = new Reader(bytes)
  const set = readSet(r, LIMITS.maxValueBytesCeiling, LIMITS.maxSiblingsDecoded)
  r.end()
  return set
}

/** An opaque context token (base64url of the encoded clock) for applications. */
export function encodeContext(vv: VersionVector): string {
  const w = new Writer()
  writeClock(w, vv)
  return Buffer.from(w.finish()).toString('base64url')
}

export function decodeContext(token: string): VersionVector {
  if (token === '') return {}
  if (!/^[A-Za-z0-9_-]+$/.test(token)) throw new InvalidInputError('context token is not base64url: pass the context a get returned')
  const r = new Reader(new Uint8Array(Buffer.from(token, 'base64url')))
  const vv = readClock(r)
  r.end()
  return vv
}
