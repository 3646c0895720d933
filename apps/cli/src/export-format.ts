import { createHash } from 'node:crypto'
import { once } from 'node:events'
import type { FileHandle } from 'node:fs/promises'
import type { Writable } from 'node:stream'
import { BadExportError, type ConflictMode, type KeySet, KvorumError, LIMITS, decodeKeySets, encodeKeySets, sizeHint } from '@kvorum/core'

/**
 * The export file (format 1), length-prefixed binary:
 *
 *   magic        "KVORUM-EXPORT\n" (14 bytes)
 *   header       u32 length, then that many bytes of JSON: ExportHeader
 *   frames       u32 length (1..MAX_FRAME_BYTES), then a key-set frame of the
 *                node protocol (messages.ts: a count, then each key and its
 *                whole sibling set: dots, contexts, timestamps, tombstones)
 *   end          u32 0
 *   trailer      u64 keys written, then the SHA-256 of every byte before it
 *
 * Binary rather than NDJSON: the sets are the protocol's own frames, so an
 * import decodes them with the same checked decoder a node uses, values stay
 * bytes (no base64, a third smaller), and every field a version carries
 * travels without a second encoding to keep in step.
 */

const MAGIC = Buffer.from('KVORUM-EXPORT\n')
/** The format this version writes and reads. */
export const EXPORT_FORMAT = 1
/** Longest header, bytes. */
const MAX_HEADER_BYTES = 64 * 1024
/** A frame is closed at this many bytes or FRAME_KEYS keys, whichever comes first. */
const FRAME_BYTES = 4 * 1024 * 1024
const FRAME_KEYS = 512
/** Longest frame an import reads: one key with every sibling at the protocol's ceilings fits. */
const MAX_FRAME_BYTES = 256 * 1024 * 1024
const DIGEST_BYTES = 32

/** What an export says about itself. */
export interface ExportHeader {
  readonly format: number
  /** The store it was exported from. */
  readonly store: string
  readonly conflict: ConflictMode
  /** When the export started (ISO 8601); it is not a snapshot of that instant. */
  readonly startedAt: string
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}

/** Writes an export to a stream, a frame at a time, waiting when the stream is full. */
export class ExportWriter {
  private readonly hash = createHash('sha256')
  private frame: KeySet[] = []
  private frameBytes = 0
  private keys = 0
  /** Bytes written so far. */
  bytes = 0

  constructor(private readonly out: Writable) {}

  private async write(chunk: Buffer | Uint8Array): Promise<void> {
    this.hash.update(chunk)
    this.bytes += chunk.length
    // once() rejects on 'error' and removes both listeners either way (a listener left per wait leaked).
    if (!this.out.write(chunk)) await once(this.out, 'drain')
  }

  async start(header: ExportHeader): Promise<void> {
    const json = Buffer.from(JSON.stringify(header))
    await this.write(MAGIC)
    await this.write(u32(json.length))
    await this.write(json)
  }

  async add(item: KeySet): Promise<void> {
    this.frame.push(item)
    this.frameBytes += item.key.length + sizeHint(item.siblings)
    this.keys++
    if (this.frame.length >= FRAME_KEYS || this.frameBytes >= FRAME_BYTES) await this.flush()
  }

  private async flush(): Promise<void> {
    if (this.frame.length === 0) return
    const body = encodeKeySets(this.frame)
    this.frame = []
    this.frameBytes = 0
    await this.write(u32(body.length))
    await this.write(body)
  }

  /** Close the last frame, then write the end mark, the key count and the checksum. */
  async finish(): Promise<number> {
    await this.flush()
    await this.write(u32(0))
    const count = Buffer.alloc(8)
    count.writeBigUInt64BE(BigInt(this.keys))
    await this.write(count)
    const digest = this.hash.digest()
    this.bytes += digest.length
    await new Promise<void>((resolve, reject) => this.out.write(digest, (e) => (e ? reject(e) : resolve())))
    return this.keys
  }
}

/** Reads an export file by position, hashing what it reads. */
class ExportReader {
  private position = 0
  readonly hash = createHash('sha256')

  constructor(
    private readonly file: FileHandle,
    private readonly name: string,
    private readonly size: number,
  ) {}

  bad(why: string): BadExportError {
    return new BadExportError(`${this.name} is not an intact Kvorum export (format ${EXPORT_FORMAT}): ${why}; nothing was imported`)
  }

  async bytes(length: number, what: string, hashed = true): Promise<Buffer> {
    if (this.position + length > this.size) throw this.bad(`it ends inside the ${what} at byte ${this.size} (truncated?)`)
    const buf = Buffer.alloc(length)
    const { bytesRead } = await this.file.read(buf, 0, length, this.position)
    if (bytesRead !== length) throw this.bad(`it ends inside the ${what} (truncated?)`)
    this.position += length
    if (hashed) this.hash.update(buf)
    return buf
  }

  get atEnd(): boolean {
    return this.position === this.size
  }
}

/** Read the header, then each frame's sets in order; the checksum and key count are checked at the end. */
export async function* readExport(file: FileHandle, name: string): AsyncGenerator<ExportHeader | KeySet[]> {
  const reader = new ExportReader(file, name, (await file.stat()).size)
  const magic = await reader.bytes(MAGIC.length, 'magic bytes').catch(() => Buffer.alloc(0))
  if (!magic.equals(MAGIC)) throw reader.bad('it does not start with the export magic bytes')
  const headerLength = (await reader.bytes(4, 'header length')).readUInt32BE()
  if (headerLength > MAX_HEADER_BYTES) throw reader.bad(`its header is ${headerLength} bytes (at most ${MAX_HEADER_BYTES})`)
  yield parseHeader(await reader.bytes(headerLength, 'header'), reader)
  let keys = 0
  for (;;) {
    const length = (await reader.bytes(4, 'frame length')).readUInt32BE()
    if (length === 0) break
    if (length > MAX_FRAME_BYTES) throw reader.bad(`a frame of ${length} bytes is over ${MAX_FRAME_BYTES}`)
    const frame = await reader.bytes(length, 'frame')
    let sets: KeySet[]
    try {
      sets = decodeKeySets(frame)
    } catch (e) {
      if (!(e instanceof KvorumError)) throw e
      throw reader.bad(`the frame after key ${keys} is malformed (${e.message})`)
    }
    keys += sets.length
    yield sets
  }
  const count = Number((await reader.bytes(8, 'key count')).readBigUInt64BE())
  const expected = reader.hash.digest()
  const digest = await reader.bytes(DIGEST_BYTES, 'checksum', false)
  if (!digest.equals(expected)) throw reader.bad('its SHA-256 checksum does not match (the file is damaged)')
  if (count !== keys) throw reader.bad(`its trailer counts ${count} keys but its frames hold ${keys}`)
  if (!reader.atEnd) throw reader.bad('bytes follow its checksum')
}

function parseHeader(bytes: Buffer, reader: ExportReader): ExportHeader {
  let header: Partial<ExportHeader>
  try {
    header = JSON.parse(bytes.toString('utf8'))
  } catch {
    throw reader.bad('its header is not JSON')
  }
  if (header.format !== EXPORT_FORMAT) throw reader.bad(`it is format ${JSON.stringify(header.format)}; this version reads format ${EXPORT_FORMAT}`)
  const storeOk = typeof header.store === 'string' && header.store.length > 0 && header.store.length <= LIMITS.maxStoreNameLength
  if (
    !storeOk ||
    (header.conflict !== 'siblings' && header.conflict !== 'lww') ||
    typeof header.startedAt !== 'string' ||
    Number.isNaN(Date.parse(header.startedAt))
  )
    throw reader.bad('its header lacks store, conflict or startedAt')
  return header as ExportHeader
}
