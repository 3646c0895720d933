import { type ClusterDef, validateCluster } from '@kvorum/core'
import type { Pool } from './gen.js'
import type { Random } from '../support/random.js'
import type { Expect, FuzzRequest } from './request.js'
import { auth } from './target.js'

/** JSON nested `depth` levels deep, as text. */
function deep(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth)
}

/** Values a field of the definition is replaced with, as JSON text. */
function oddValue(prng: Random): string {
  return prng.pick([
    'null',
    '-1',
    '0',
    '1',
    '1.5',
    '1e400',
    '-0',
    '9007199254740993',
    '18446744073709551616',
    '"x"',
    '""',
    '[]',
    '{}',
    'true',
    '"n1"',
    '"http://127.0.0.1:1"',
    '"\\u0000"',
    '"\\ud800"',
    JSON.stringify('é'.repeat(100)),
    JSON.stringify('a'.repeat(prng.range(65, 100_000))),
    '[1,2]',
    '{"__proto__":{"polluted":true}}',
    '{"constructor":{"prototype":{"polluted":true}}}',
    deep(prng.range(10, 100_000)),
  ])
}

/** Every path to a value inside the definition. */
function paths(x: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (typeof x !== 'object' || x === null) return [prefix]
  const keys: (string | number)[] = Array.isArray(x) ? x.map((_, i) => i) : Object.keys(x)
  return [prefix, ...keys.flatMap((k) => paths((x as Record<string | number, unknown>)[k], [...prefix, k]))]
}

const MARK = 'FUZZ-MARK-7f3a'

/** The definition as JSON text with the value at one path replaced by `text` (which may be invalid JSON). */
function replaceAt(def: ClusterDef, path: (string | number)[], text: string): string {
  if (path.length === 0) return text
  const copy = JSON.parse(JSON.stringify(def)) as Record<string | number, unknown>
  let at: Record<string | number, unknown> = copy
  for (const k of path.slice(0, -1)) at = at[k] as Record<string | number, unknown>
  at[path[path.length - 1] as string | number] = MARK
  return JSON.stringify(copy).replace(JSON.stringify(MARK), () => text)
}

function withVersion(def: ClusterDef, version: number): ClusterDef {
  return { ...def, version }
}

/** A definition text of one of many kinds: stale, odd field values, extra or missing fields, broken JSON. */
function text(pool: Pool, def: ClusterDef): { how: string; body: string } {
  const { prng } = pool
  const older = () => withVersion(def, prng.range(1, def.version - 1))
  return prng.weighted<() => { how: string; body: string }>([
    [3, () => ({ how: 'older-version', body: JSON.stringify(older()) })],
    [1, () => ({ how: 'same', body: JSON.stringify(def) })],
    [
      1,
      () => ({ how: 'same-version-changed', body: JSON.stringify({ ...def, stores: def.stores.map((s) => ({ ...s, maxValueBytes: s.maxValueBytes + 1 })) }) }),
    ],
    [
      6,
      () => {
        const base = prng.chance(0.5) ? def : older()
        const path = prng.pick(paths(base))
        return { how: `field(${path.join('.') || 'root'})`, body: replaceAt(base, path, oddValue(prng)) }
      },
    ],
    [
      2,
      () => {
        const base = prng.chance(0.5) ? def : older()
        const path = prng.pick(paths(base).filter((p) => p.length > 0))
        const copy = JSON.parse(JSON.stringify(base)) as Record<string | number, unknown>
        let at = copy
        for (const k of path.slice(0, -1)) at = at[k] as Record<string | number, unknown>
        const last = path[path.length - 1] as string | number
        if (Array.isArray(at)) at.push(at[last as number])
        else delete at[last]
        return { how: `${Array.isArray(at) ? 'duplicate' : 'delete'}(${path.join('.')})`, body: JSON.stringify(copy) }
      },
    ],
    [2, () => ({ how: 'extra-field', body: JSON.stringify(prng.chance(0.5) ? def : older()).replace(/}$/, `,"extra":${oddValue(prng)}}`) })],
    [
      2,
      () => {
        const full = JSON.stringify(prng.chance(0.5) ? def : older())
        return prng.pick([
          { how: 'truncated', body: full.slice(0, prng.int(full.length)) },
          { how: 'trailing', body: `${full}}` },
          { how: 'single-quotes', body: full.replace(/"/g, "'") },
          { how: 'comment', body: `/* c */${full}` },
          { how: 'bom', body: `\ufeff${full}` },
          { how: 'empty', body: '' },
          { how: 'scalar', body: prng.pick(['null', '[]', '1', '"x"', '{}', 'true']) },
          { how: 'deep', body: deep(prng.range(1000, 200_000)) },
        ])
      },
    ],
  ])()
}

/**
 * What the node must answer, decided as it decides: bytes that do not parse
 * or validate are KV_INVALID_INPUT; a valid definition not newer than the
 * held one is KV_CLUSTER_VERSION_CONFLICT unless it is the held one exactly.
 * Returns null for a valid newer definition, which the fuzzer never sends:
 * it would replace the cluster.
 */
function decide(body: Uint8Array, def: ClusterDef): Expect | null {
  let parsed: unknown
  try {
    // As the node's route table decodes it: UTF-8 with a BOM dropped, and bytes that are not
    // UTF-8 refused (fetch's Body.json() used to replace them; a definition with them is invalid).
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body))
    validateCluster(parsed)
  } catch {
    return { accept: 'never', codes: ['KV_INVALID_INPUT'] }
  }
  const valid = parsed as ClusterDef
  if (valid.version > def.version) return null
  let same = false
  try {
    same = valid.version === def.version && JSON.stringify(valid) === JSON.stringify(def)
  } catch {
    // Too deep to print: it cannot be the held definition.
  }
  return same ? { accept: 'must', codes: [] } : { accept: 'never', codes: ['KV_CLUSTER_VERSION_CONFLICT'] }
}

/** PUT /v1/cluster with a malformed, stale or odd definition. */
export function clusterRequest(pool: Pool, def: ClusterDef): FuzzRequest {
  for (;;) {
    const { how, body: textBody } = text(pool, def)
    let body = new TextEncoder().encode(textBody)
    if (pool.prng.chance(0.05)) {
      // Bytes that are not UTF-8 inside the text.
      body = Uint8Array.from([...body.subarray(0, body.length >> 1), 0xff, 0xc3, ...body.subarray(body.length >> 1)])
    }
    const expect = decide(body, def)
    if (!expect) continue
    const type = pool.prng.pick(['application/json', 'application/json', 'text/plain', 'application/octet-stream'])
    return { method: 'PUT', path: '/v1/cluster', headers: { ...auth, 'content-type': type }, body, kind: `cluster:${how}`, expect, effect: { kind: 'none' } }
  }
}
