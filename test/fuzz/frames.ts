import { InvalidInputError, type StoreDef } from '@kvorum/core'
import { defective } from './defects.js'
import type { Pool } from './gen.js'
import { mutate } from './mutate.js'
import type { Expect, FuzzRequest } from './request.js'
import { type BinaryRoute, ROUTES } from './routes.js'
import { BINARY } from './target.js'

/** Hint targets: a node of the cluster, nodes that are not, and odd names. */
const TARGETS = ['n2', 'n3', 'n1', 'x', 'node-with-a-long-name-0123456789', '%E2%98%83', '0']

interface Aim {
  readonly route: BinaryRoute
  readonly store: StoreDef
  readonly path: string
}

function aim(pool: Pool, route = pool.prng.pick(ROUTES)): Aim {
  const store = pool.prng.pick(pool.stores)
  return { route, store, path: route.path(store.name, pool.prng.pick(TARGETS)) }
}

/**
 * A request for `bytes`, with what the node must do: refuse it when the
 * decoders refuse it, and otherwise accept it unless the engine has a reason
 * (a partition out of range, an unknown store inside a hint).
 */
export function frameRequest(to: Aim, bytes: Uint8Array, kind: string, headers: FuzzRequest['headers'] = BINARY): FuzzRequest {
  const base = { method: 'POST', path: to.path, headers, body: bytes, kind: `${kind}:${to.route.name}` }
  try {
    const decoded = to.route.decode(bytes, to.store)
    const expect: Expect = decoded.refusable ? { accept: 'may', codes: ['KV_INVALID_INPUT', 'KV_UNKNOWN_STORE'] } : { accept: 'must', codes: [] }
    return { ...base, expect, effect: { kind: 'frame', route: to.route, store: to.store, decoded } }
  } catch (e) {
    if (!(e instanceof InvalidInputError)) throw e
    return { ...base, expect: { accept: 'never', codes: ['KV_INVALID_INPUT'] }, effect: { kind: 'none' } }
  }
}

/** A valid frame, as the SDK would send it. */
export function validFrame(pool: Pool): FuzzRequest {
  const to = aim(pool)
  return frameRequest(to, to.route.valid(pool, to.store), 'valid')
}

/** A valid frame with byte-level damage: bit flips, cuts, corrupted lengths and counts. */
export function mutatedFrame(pool: Pool): FuzzRequest {
  const to = aim(pool)
  const other = pool.prng.pick(ROUTES).valid(pool, to.store)
  const { bytes, how } = mutate(pool.prng, to.route.valid(pool, to.store), other)
  return frameRequest(to, bytes, `mutated(${how})`)
}

/** A frame with one structural defect: repeated actors or dots, zero counters, bad UTF-8, sizes past a limit. */
export function defectiveFrame(pool: Pool): FuzzRequest {
  const to = aim(pool)
  const made = defective(pool, to.route.name, to.store)
  if (!made) return mutatedFrame(pool)
  return frameRequest(to, made.bytes, `defect(${made.how})`)
}

/** Random bytes, or the valid body of another route. */
export function strangerFrame(pool: Pool): FuzzRequest {
  const to = aim(pool)
  const { prng } = pool
  if (prng.chance(0.5)) return frameRequest(to, prng.bytes(prng.size(4096)), 'random-bytes')
  const from = prng.pick(ROUTES)
  return frameRequest(to, from.valid(pool, to.store), `body-of-${from.name}`)
}

const CONTENT_TYPES = [
  undefined,
  '',
  'text/plain',
  'application/json',
  'application/octet',
  'application/x-octet-stream',
  'APPLICATION/OCTET-STREAM',
  'multipart/form-data; boundary=x',
  'application/x-www-form-urlencoded',
  'application/octet-stream; charset=utf-8',
  'octet-stream',
  ' application/octet-stream',
]

/** A valid frame under a wrong, odd or missing content type. */
export function contentTypeFrame(pool: Pool): FuzzRequest {
  const to = aim(pool)
  const type = pool.prng.pick(CONTENT_TYPES)
  const headers: Record<string, string> = { authorization: BINARY.authorization }
  if (type !== undefined) headers['content-type'] = type
  const req = frameRequest(to, to.route.valid(pool, to.store), `content-type(${JSON.stringify(type ?? null)})`, headers)
  // Node trims the header's surrounding whitespace, so only the prefix decides.
  if (type?.trim().startsWith('application/octet-stream')) return req
  return { ...req, expect: { accept: 'never', codes: ['KV_UNSUPPORTED_MEDIA_TYPE'] }, effect: { kind: 'none' } }
}

/** A frame (valid or damaged) sent chunked: the node takes it as it would with a length, or refuses it with 411. */
export function chunkedFrame(pool: Pool): FuzzRequest {
  const req = pool.prng.chance(0.5) ? validFrame(pool) : mutatedFrame(pool)
  return {
    ...req,
    chunked: true,
    kind: `chunked:${req.kind}`,
    expect: { accept: req.expect.accept === 'never' ? 'never' : 'may', codes: [...req.expect.codes, 'KV_LENGTH_REQUIRED'] },
  }
}
