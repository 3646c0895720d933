import { BRANCHES, BRANCH_FANOUT, HASH_BYTES, decodeStoredHints } from '@kvorum/core'
import type { Pool } from './gen.js'
import type { FuzzRequest } from './request.js'
import { PARTITIONS, auth } from './target.js'

function size(bytes: number) {
  return (body: Uint8Array) => (body.length === bytes ? undefined : `answer is ${body.length} bytes, not ${bytes}`)
}

function jsonBody(body: Uint8Array): string | undefined {
  try {
    JSON.parse(Buffer.from(body).toString())
    return undefined
  } catch {
    return 'answer is not JSON'
  }
}

function hints(body: Uint8Array): string | undefined {
  decodeStoredHints(body)
  return undefined
}

/** A valid read (GET) of any route: the node must answer 2xx and change nothing. */
export function validRead(pool: Pool): FuzzRequest {
  const { prng } = pool
  const store = prng.pick(pool.stores).name
  const p = prng.int(PARTITIONS)
  const read = (path: string, check: (body: Uint8Array) => string | undefined, headers: FuzzRequest['headers'] = auth): FuzzRequest => ({
    method: 'GET',
    path,
    headers,
    kind: `read:${path.split('?')[0]?.replace(/\/\d+/g, '/N')}`,
    expect: { accept: 'must', codes: [] },
    effect: { kind: 'none' },
    check,
  })
  return prng.weighted<() => FuzzRequest>([
    [1, () => read('/health', jsonBody, {})],
    [0.2, () => read('/metrics', () => undefined)],
    [1, () => read('/v1/cluster', jsonBody)],
    [2, () => read(`/v1/stores/${store}/merkle`, size(PARTITIONS * HASH_BYTES))],
    [2, () => read(`/v1/stores/${store}/merkle/${p}`, size(BRANCHES * HASH_BYTES))],
    [2, () => read(`/v1/stores/${store}/merkle/${p}/${prng.int(BRANCHES)}`, size(BRANCH_FANOUT * HASH_BYTES))],
    [1, () => read('/v1/hints', jsonBody)],
    [1, () => read(`/v1/hints/n2?limit=${prng.range(1, 100)}&after=${prng.int(50)}`, hints)],
  ])()
}
