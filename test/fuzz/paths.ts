import { type Route, ROUTE_LIST, callPath } from '@kvorum/core'
import type { Pool } from './gen.js'
import { validFrame } from './frames.js'
import type { Random } from '../support/random.js'
import { validRead } from './reads.js'
import { type FuzzRequest, STABLE_CODES } from './request.js'
import { BINARY, TOKEN } from './target.js'

/** Percent-encoded UTF-8: how unicode travels in a valid request target. */
function pct(text: string): string {
  return [...Buffer.from(text, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('')
}

/** UTF-8 bytes as a latin1 string: how node:http puts raw non-ASCII bytes on the request line. */
function rawUtf8(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1')
}

/** Numbers for partition, branch, limit and after: valid, past the range, and not numbers at all. */
function number(prng: Random): string {
  return prng.pick([
    '0',
    '1',
    '7',
    '8',
    '31',
    '32',
    '-1',
    '1.5',
    '1e3',
    '0x1',
    '+1',
    '%31',
    '%2D1',
    '%20',
    '',
    'NaN',
    'Infinity',
    '999999999',
    '1000000000',
    '99999999999999999999999',
    '00000000000001',
    pct('٣'),
    pct('１'),
    '%',
    '%zz',
    '%E0%A4%A',
    '9'.repeat(prng.range(10, 2000)),
    '0'.repeat(prng.range(1, 12)),
  ])
}

const STORE_NAMES = [
  'nope',
  'KV',
  'kv%20',
  '%6bv',
  '%6Bv',
  '..',
  '%2e%2e',
  'kv%00',
  '__proto__',
  'constructor',
  'toString',
  'kv%2fmerkle',
  pct('ключ'),
  pct('kv\u0301'),
  '%F0%9F%92%A5',
  '%ff',
  'a'.repeat(64),
  'a'.repeat(65),
  'x'.repeat(3000),
]

const TRAVERSALS = [
  '/v1/stores/../cluster',
  '/v1/stores/kv/../../cluster',
  '/v1/stores/%2e%2e/cluster',
  '/v1/./cluster',
  '//v1/cluster',
  '/v1//cluster',
  '/v1/cluster/',
  '/v1/cluster/..',
  '/v1/stores/kv/merkle/..%2f..%2f..%2fetc%2fpasswd',
  '/..',
  '/../../../../etc/passwd',
  '/v1/stores/kv/merkle/%2e%2e/%2e%2e',
  '/v1/stores/kv\\merkle',
  '/v1\\cluster',
  '/%00',
  '/v1/stores/kv/merkle?../..',
  '/v1/stores/kv/coordinate/',
  '/v1/stores/kv/coordinate/..',
  '/v1/stores/kv/./coordinate',
  '/V1/CLUSTER',
  '/health/',
  '/health/..',
  '/v1/hints/../cluster',
  '/*',
  '/v1/stores/*/merkle',
  '/v1/stores/kv/merkle#frag',
  '/v1/hints/%2F/ack',
  '/v1/hints//ack',
]

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD']

const PATH_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789/%.?&=#~!$'()*+,;:@[]_-"

function randomPath(prng: Random): string {
  let out = '/'
  const n = prng.size(200)
  for (let i = 0; i < n; i++)
    out += prng.chance(0.05) ? pct(String.fromCodePoint(prng.range(0x80, 0x2fff))) : (PATH_CHARS[prng.int(PATH_CHARS.length)] as string)
  return out
}

/**
 * A request to a mangled path, with a body no route decodes: the node must
 * answer a 4xx with a stable code or, if the path still reaches a route,
 * whatever that route answers (so its effect is unknown).
 */
export function pathRequest(pool: Pool): FuzzRequest {
  if (pool.prng.chance(0.05)) return rawTarget(pool)
  const { prng } = pool
  const store = prng.pick(pool.stores).name
  const [how, path] = prng.weighted<() => [string, string]>([
    [3, () => ['merkle-number', `/v1/stores/${store}/merkle/${number(prng)}${prng.chance(0.6) ? `/${number(prng)}` : ''}`]],
    [
      2,
      () => [
        'hints-query',
        `/v1/hints/${prng.pick(['n2', 'x'])}?${prng.pick(['limit', 'after', 'limit=1&limit', 'after=1&after'])}=${number(prng)}${prng.chance(0.5) ? `&${prng.pick(['limit', 'after'])}=${number(prng)}` : ''}`,
      ],
    ],
    [
      3,
      () => [
        'store-name',
        `/v1/stores/${prng.pick(STORE_NAMES)}/${prng.pick(['coordinate', 'merge', 'get', 'batch', 'scan', 'tombstones', 'reap', 'merkle', 'merkle/0', 'merkle/0/0'])}`,
      ],
    ],
    [3, () => ['traversal', prng.pick(TRAVERSALS)]],
    [2, () => ['random', randomPath(prng)]],
    [1, () => ['query', `/v1/stores/${store}/merkle?${randomPath(prng).slice(1)}`]],
  ])()
  const method = path.includes('merkle') || path.startsWith('/v1/hints/') || prng.chance(0.5) ? prng.pick(['GET', 'GET', 'POST', 'HEAD']) : prng.pick(METHODS)
  const body = method === 'GET' || method === 'HEAD' ? undefined : prng.bytes(prng.size(16))
  return {
    method,
    path,
    headers: BINARY,
    ...(body ? { body } : {}),
    kind: `path:${how}`,
    expect: { accept: 'may', codes: STABLE_CODES },
    effect: { kind: 'unknown' },
  }
}

/**
 * Raw UTF-8 bytes in the request target are not HTTP/1.1: Node's parser
 * refuses them (a bare 400, connection closed) before any of the node's code
 * runs, so only the status is checked.
 */
function rawTarget(pool: Pool): FuzzRequest {
  const text = pool.prng.pick(['/v1/stores/ключ/merkle', '/v1/stores/kv/merkle/٣', '/héalth', '/v1/hints/☃?limit=１', '/💥'])
  return {
    method: 'GET',
    path: rawUtf8(text),
    headers: BINARY,
    kind: 'path:raw-bytes',
    expect: { accept: 'never', codes: STABLE_CODES, bare: true },
    effect: { kind: 'none' },
  }
}

/** Each route of the protocol's table, as a path (store kv, target n2, partition and branch 0). */
const routePath = (r: Route) => callPath(r, { params: { store: 'kv', target: 'n2', partition: 0, branch: 0 } })
const CANONICAL_GETS = ['/metrics', ...ROUTE_LIST.filter((r) => r.method === 'GET' && r.path !== '/health').map(routePath)]
const CANONICAL_POSTS = ROUTE_LIST.filter((r) => r.method === 'POST').map(routePath)

/** Every method and path the table serves (a path above may answer to more than one method). */
const SERVED = new Set(ROUTE_LIST.map((r) => `${r.method} ${routePath(r)}`))

/** A known path with a method it does not serve: 404 KV_NOT_FOUND. */
export function wrongMethod(pool: Pool): FuzzRequest {
  const { prng } = pool
  const get = prng.chance(0.5)
  const path = get ? prng.pick(CANONICAL_GETS) : prng.pick(CANONICAL_POSTS)
  // HEAD is served by every GET route.
  const method = prng.pick(get ? ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] : ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'])
  const body = method === 'GET' || method === 'HEAD' || prng.chance(0.5) ? undefined : prng.bytes(prng.size(64))
  const ok = SERVED.has(`${method === 'HEAD' ? 'GET' : method} ${path}`)
  return {
    method,
    path,
    headers: BINARY,
    ...(body ? { body } : {}),
    kind: `method:${method}`,
    expect: ok ? { accept: 'may', codes: STABLE_CODES } : { accept: 'never', codes: ['KV_NOT_FOUND'] },
    effect: { kind: 'none' },
  }
}

const BAD_TOKENS: readonly (string | readonly string[] | undefined)[] = [
  undefined,
  '',
  'Bearer',
  'Bearer ',
  `Bearer ${TOKEN}x`,
  `bearer ${TOKEN}`,
  `BEARER ${TOKEN}`,
  `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}`,
  `Bearer ${TOKEN.slice(1)}`,
  `Bearer  ${TOKEN}`,
  `Bearer\t${TOKEN}`,
  `Bearer ${TOKEN}\u00e9`,
  `${TOKEN}`,
  `Bearer ${'a'.repeat(4000)}`,
  `Token ${TOKEN}`,
  `Bearer ${TOKEN.toUpperCase()}`,
  ['Bearer wrong', `Bearer ${TOKEN}`],
  [`Bearer ${TOKEN}`, `Bearer ${TOKEN}`],
]

const HOSTS = [
  'evil.example',
  'a b',
  '127.0.0.1:99999',
  '[::1',
  'h\u00f4st',
  '127.0.0.1:0',
  'localhost:abc',
  '@',
  '127.0.0.1/v1/cluster?',
  '..',
  '%00',
  'x'.repeat(300),
  'user@127.0.0.1',
  '127.0.0.1#x',
  '127.0.0.1\\x',
  '',
]

/** A valid request under an odd Host header, from which the adapter builds the request URL. */
export function hostRequest(pool: Pool): FuzzRequest {
  const base = pool.prng.chance(0.5) ? validFrame(pool) : validRead(pool)
  const host = pool.prng.pick(HOSTS)
  return {
    ...base,
    headers: { ...base.headers, host },
    kind: `host(${JSON.stringify(host).slice(0, 30)}):${base.kind}`,
    expect: { accept: 'may', codes: STABLE_CODES },
    effect: { kind: 'unknown' },
  }
}

/** A valid request under a missing or wrong token: 401 KV_UNAUTHORIZED on every route but /health. */
export function authRequest(pool: Pool): FuzzRequest {
  const { prng } = pool
  const base = prng.chance(0.6) ? validFrame(pool) : validRead(pool)
  const token = prng.pick(BAD_TOKENS)
  const headers: Record<string, string | readonly string[]> = { ...base.headers }
  delete headers.authorization
  if (token !== undefined) headers.authorization = token
  // Repeated Authorization headers reach the app joined ("a, b"), which is never the token.
  const passes = token === `Bearer ${TOKEN}`
  const kind = `auth(${JSON.stringify(token ?? null).slice(0, 40)}):${base.kind}`
  if (passes || base.path === '/health') return { ...base, headers, kind }
  return { ...base, headers, kind, expect: { accept: 'never', codes: ['KV_UNAUTHORIZED'] }, effect: { kind: 'none' } }
}
