import { afterEach, describe, expect, it } from 'vitest'
import { utf8 } from '@kvorum/core'
import { type MemoryCluster, memoryCluster } from '../../../test/support/memory-cluster.js'
import type { Codec } from './index.js'

let cluster: MemoryCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

async function stores() {
  cluster = await memoryCluster()
  const { kv } = await cluster.client()
  const bytes = kv.store('default')
  await bytes.put('binary', new Uint8Array([0xff, 0xfe, 0x00]))
  await bytes.put('not-json', utf8('{"cart": [1, 2'))
  return { kv, bytes }
}

describe('a stored value the codec cannot decode', () => {
  // Regression: these surfaced as a bare TypeError (ERR_ENCODING_INVALID_ENCODED_DATA) or a
  // SyntaxError without a code, naming neither the store nor the key.
  it.each([
    ['utf8', 'binary', /not valid for encoding utf-8/i],
    ['json', 'binary', /not valid for encoding utf-8/i],
    ['json', 'not-json', /JSON/],
  ] as const)('under %s, key %s fails with KV_DECODE_FAILED naming the store, the key and the codec', async (codec, key, why) => {
    const { kv } = await stores()
    const err = await kv
      .store('default', { codec })
      .get(key)
      .catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'KV_DECODE_FAILED', retryable: false })
    expect((err as Error).message).toContain(`key "${key}" of store default`)
    expect((err as Error).message).toContain(`the ${codec} codec`)
    expect((err as Error).message).toMatch(why)
    expect((err as Error).cause).toBeInstanceOf(Error)
  })

  it('a custom codec that throws fails the same way, and bytes still read the value', async () => {
    const { kv, bytes } = await stores()
    const strict: Codec<number> = {
      encode: (n) => utf8(String(n)),
      decode: (b) => {
        if (b.length !== 1) throw new RangeError(`expected one byte, got ${b.length}`)
        return b[0] as number
      },
    }
    await expect(kv.store('default', { codec: strict }).get('binary')).rejects.toMatchObject({
      code: 'KV_DECODE_FAILED',
      message: expect.stringMatching(/key "binary" of store default: .*custom codec \(expected one byte, got 3\)/),
    })
    expect((await bytes.get('binary')).values).toEqual([new Uint8Array([0xff, 0xfe, 0x00])])
  })

  it('in getMany only the undecodable key fails; the others are read', async () => {
    const { kv } = await stores()
    const json = kv.store('default', { codec: 'json' })
    await json.put('fine', { items: ['book'] })
    const got = await json.getMany(['fine', 'not-json', 'absent'])
    expect(got.get('fine')).toEqual({ ok: true, value: expect.objectContaining({ found: true, values: [{ items: ['book'] }] }) })
    expect(got.get('not-json')).toMatchObject({ ok: false, error: { code: 'KV_DECODE_FAILED' } })
    expect(got.get('absent')).toMatchObject({ ok: true, value: { found: false, values: [] } })
  })
})

describe('a value the codec cannot encode', () => {
  it('is KV_INVALID_INPUT naming the key, and nothing is stored', async () => {
    const { kv, bytes } = await stores()
    const json = kv.store('default', { codec: 'json' })
    const cyclic: { self?: unknown } = {}
    cyclic.self = cyclic
    for (const value of [cyclic, { n: 1n }] as never[]) {
      await expect(json.put('k', value)).rejects.toMatchObject({
        code: 'KV_INVALID_INPUT',
        message: expect.stringMatching(/^the value for key "k" of store default does not encode with the json codec: /),
      })
    }
    await expect(kv.store('default', { codec: 'utf8' }).put('k', 42 as never)).rejects.toMatchObject({
      code: 'KV_INVALID_INPUT',
      message: expect.stringContaining('key "k"'),
    })
    expect((await bytes.get('k')).found).toBe(false)
  })
})
