import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { type KeySet, utf8 } from '@kvorum/core'
import { afterAll, describe, expect, it } from 'vitest'
import { EXPORT_FORMAT, type ExportHeader, ExportWriter, readExport } from '../../apps/cli/src/export-format.js'

// The export file format on its own: what is written reads back, and a slow reader costs no listeners.

const dir = mkdtempSync(join(tmpdir(), 'kvorum-format-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const header: ExportHeader = { format: EXPORT_FORMAT, store: 'default', conflict: 'siblings', startedAt: new Date().toISOString() }

function item(i: number, valueBytes = 16): KeySet {
  return {
    key: utf8(`k${i}`),
    siblings: [{ dot: { actor: 'a1', counter: i + 1 }, context: { b2: 3 }, timestamp: i, value: new Uint8Array(valueBytes).fill(i % 251) }],
  }
}

/** A set as comparable text: the key and each version's fields, bytes as hex. */
function show(it: KeySet): string {
  return JSON.stringify([
    Buffer.from(it.key).toString('hex'),
    it.siblings.map((v) => [v.dot, v.context, v.timestamp, v.value && Buffer.from(v.value).toString('hex')]),
  ])
}

/** Write `items` through a stream that buffers little, collecting the bytes. */
async function written(items: readonly KeySet[]): Promise<{ bytes: Buffer; maxErrorListeners: number }> {
  const out = new PassThrough({ highWaterMark: 1024 })
  const chunks: Buffer[] = []
  let maxErrorListeners = 0
  out.on('data', (c: Buffer) => {
    chunks.push(c)
    maxErrorListeners = Math.max(maxErrorListeners, out.listenerCount('error'))
  })
  const writer = new ExportWriter(out)
  await writer.start(header)
  for (const it of items) await writer.add(it)
  expect(await writer.finish()).toBe(items.length)
  out.end()
  return { bytes: Buffer.concat(chunks), maxErrorListeners }
}

async function readAll(path: string): Promise<{ header: unknown; items: KeySet[] }> {
  const file = await open(path, 'r')
  try {
    const items: KeySet[] = []
    let head: unknown
    for await (const part of readExport(file, path)) {
      if (Array.isArray(part)) items.push(...part)
      else head = part
    }
    return { header: head, items }
  } finally {
    await file.close()
  }
}

describe('the export format', () => {
  it('reads back every set as written, over many frames, with no listener left per wait on a slow stream', async () => {
    const items = Array.from({ length: 600 }, (_, i) => item(i, 100))
    const { bytes, maxErrorListeners } = await written(items)
    expect(maxErrorListeners).toBeLessThanOrEqual(2)
    const path = join(dir, 'ok.kvx')
    writeFileSync(path, bytes)
    const back = await readAll(path)
    expect(back.header).toEqual(header)
    // Two frames (512 keys, then 88), compared as text: a deep diff of 600 byte arrays takes minutes.
    expect(back.items.map(show)).toEqual(items.map(show))
  })

  it('refuses another format version by name, and bytes after the checksum', async () => {
    const { bytes } = await written([item(1)])
    const path = join(dir, 'v2.kvx')
    writeFileSync(path, Buffer.from(bytes.toString('latin1').replace('"format":1', '"format":2'), 'latin1'))
    await expect(readAll(path)).rejects.toMatchObject({
      code: 'KV_BAD_EXPORT',
      message: expect.stringContaining('it is format 2; this version reads format 1'),
    })
    writeFileSync(path, Buffer.concat([bytes, Buffer.from([0])]))
    await expect(readAll(path)).rejects.toMatchObject({ code: 'KV_BAD_EXPORT', message: expect.stringContaining('bytes follow its checksum') })
  })
})
