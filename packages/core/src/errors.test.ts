import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { ALL_ERROR_CODES, ERROR_CODES, type ErrorCode } from './error-codes.js'
import {
  AbortedError,
  BootstrapFailedError,
  ClientClosedError,
  ClientOverloadedError,
  ClusterExistsError,
  ClusterVersionConflictError,
  DataDirError,
  DataFormatError,
  DiskFullError,
  DataCorruptError,
  DecodeFailedError,
  HintBacklogFullError,
  IndeterminateWriteError,
  InternalError,
  InvalidInputError,
  KvorumError,
  LengthRequiredError,
  ListenFailedError,
  MissingPackageError,
  NoClusterError,
  NodeClosedError,
  NodeDownError,
  NodeError,
  NodeUnavailableError,
  OverloadedError,
  PayloadTooLargeError,
  PortInUseError,
  QuorumNotMetError,
  RouteNotFoundError,
  StaleMetadataError,
  TimeoutError,
  TooManySiblingsError,
  UnauthorizedError,
  UnknownCodeError,
  UnknownStoreError,
  UnsupportedMediaTypeError,
  UsageError,
  UnsignedDefinitionError,
  TlsRequiredError,
} from './errors.js'
import { codeOf, errorFromItem, errorFromWire, isFatal, isRetryable, mayHaveApplied, statusOf } from './error-wire.js'

/** One error of each code, made the way the party that raises it makes it. */
const SAMPLES = {
  KV_INVALID_INPUT: new InvalidInputError('key must be 1..1024 bytes'),
  KV_UNAUTHORIZED: new UnauthorizedError(),
  KV_UNKNOWN_STORE: new UnknownStoreError('carts'),
  KV_TOO_MANY_SIBLINGS: TooManySiblingsError.forKey('alice', 101, 100),
  KV_PAYLOAD_TOO_LARGE: new PayloadTooLargeError(64),
  KV_LENGTH_REQUIRED: new LengthRequiredError(),
  KV_UNSUPPORTED_MEDIA_TYPE: new UnsupportedMediaTypeError('application/octet-stream', 'text/plain'),
  KV_CLUSTER_VERSION_CONFLICT: new ClusterVersionConflictError(3, 2),
  KV_STALE_METADATA: new StaleMetadataError('node n1 does not hold partition 7', 4),
  KV_NOT_FOUND: new RouteNotFoundError('GET', '/nope'),
  KV_NO_CLUSTER: new NoClusterError(),
  KV_OVERLOADED: new OverloadedError(10_000),
  KV_NODE_CLOSED: new NodeClosedError(),
  KV_HINT_BACKLOG_FULL: new HintBacklogFullError('n3', 100_000),
  KV_DATA_FORMAT: new DataFormatError(2, 1),
  KV_DISK_FULL: new DiskFullError('n2'),
  KV_DATA_CORRUPT: new DataCorruptError('key "alice" of store carts on node n2 failed its checksum'),
  KV_LISTEN_FAILED: new ListenFailedError('cannot listen on 127.0.0.1:7070: the port is in use (another kvorum-node?)'),
  KV_DATA_DIR: new DataDirError('cannot use data directory ./data/n1: not a directory'),
  KV_INTERNAL: new InternalError(),
  KV_NODE_UNAVAILABLE: new NodeUnavailableError('n2', 'ECONNRESET: socket hang up', { mayHaveApplied: true }),
  KV_NODE_DOWN: new NodeDownError('n2'),
  KV_NODE_ERROR: new NodeError('n2', 'HTTP 502'),
  KV_CLIENT_OVERLOADED: new ClientOverloadedError(20_000),
  KV_QUORUM_NOT_MET: new QuorumNotMetError('put', 2, 1, [{ node: 'n2', code: 'KV_NODE_DOWN', message: 'marked down' }]),
  KV_TIMEOUT: new TimeoutError('get', 3000),
  KV_INDETERMINATE_WRITE: new IndeterminateWriteError('the coordinator did not answer', []),
  KV_BOOTSTRAP_FAILED: new BootstrapFailedError('no seed answered'),
  KV_CLOSED: new ClientClosedError(),
  KV_DECODE_FAILED: DecodeFailedError.forKey('carts', '"alice"', 'json', new SyntaxError('Unexpected token')),
  KV_ABORTED: new AbortedError('get of "alice"', new Error('user left')),
  KV_USAGE: new UsageError('unknown option --nope'),
  KV_CLUSTER_EXISTS: new ClusterExistsError('http://127.0.0.1:7070', 2),
  KV_PORT_IN_USE: new PortInUseError('port 7071 is in use'),
  KV_UNKNOWN_CODE: new UnknownCodeError('KV_FROM_THE_FUTURE', 'something new'),
  KV_MISSING_PACKAGE: new MissingPackageError('kvorum-node', 'kvorum dev starts kvorum-node processes'),
  KV_UNSIGNED_DEFINITION: new UnsignedDefinitionError('the definition is not signed'),
  KV_TLS_REQUIRED: new TlsRequiredError(),
} satisfies Record<ErrorCode, KvorumError>

const overWire = (e: KvorumError): KvorumError => errorFromWire(JSON.parse(JSON.stringify(e)))

describe('the error registry', () => {
  it.each(ALL_ERROR_CODES)('%s: its class carries it, and it comes back from the wire as the same class, code and message', (code) => {
    const sent = SAMPLES[code]
    expect(sent.code).toBe(code)
    expect(sent).toBeInstanceOf(KvorumError)
    const received = overWire(sent)
    expect(received.constructor).toBe(sent.constructor)
    expect(received).toBeInstanceOf(KvorumError)
    expect(received.name).toBe(sent.constructor.name)
    expect(received.code).toBe(code)
    expect(received.message).toBe(sent.message)
    expect(received.stack).toContain(sent.message)
    expect(received.toJSON()).toEqual(sent.toJSON())
  })

  it.each(ALL_ERROR_CODES)('%s: every error carries `retryable` from its code, also when rebuilt from the wire', (code) => {
    expect(SAMPLES[code].retryable).toBe(ERROR_CODES[code].retryable)
    expect(overWire(SAMPLES[code]).retryable).toBe(ERROR_CODES[code].retryable)
  })

  it('timeouts, overload, unreachable nodes and stale metadata are retryable; wrong or given-up calls are not', () => {
    const retryable = ['KV_TIMEOUT', 'KV_OVERLOADED', 'KV_CLIENT_OVERLOADED', 'KV_NODE_UNAVAILABLE', 'KV_STALE_METADATA', 'KV_QUORUM_NOT_MET'] as const
    const final = ['KV_INVALID_INPUT', 'KV_UNAUTHORIZED', 'KV_UNKNOWN_STORE', 'KV_NOT_FOUND', 'KV_CLOSED', 'KV_DECODE_FAILED', 'KV_ABORTED'] as const
    expect(retryable.map((c) => SAMPLES[c].retryable)).toEqual(retryable.map(() => true))
    expect(final.map((c) => SAMPLES[c].retryable)).toEqual(final.map(() => false))
  })

  it('gives every code its own class', () => {
    const classes = new Set(Object.values(SAMPLES).map((e) => e.constructor))
    expect(classes.size).toBe(ALL_ERROR_CODES.length)
  })

  it('a wire KV_UNKNOWN_STORE becomes an UnknownStoreError (it used to stay a bare KvorumError)', () => {
    expect(errorFromWire({ code: 'KV_UNKNOWN_STORE', message: 'unknown store "x"' })).toBeInstanceOf(UnknownStoreError)
  })

  it('a stale-metadata error keeps its cluster version over the wire, in JSON bodies and batch items', () => {
    const sent = new StaleMetadataError('moved', 9)
    expect(sent.toJSON()).toEqual({ code: 'KV_STALE_METADATA', message: 'moved', clusterVersion: 9 })
    expect((overWire(sent) as StaleMetadataError).clusterVersion).toBe(9)
    expect((errorFromItem(sent.toJSON()) as StaleMetadataError).clusterVersion).toBe(9)
  })

  it('fields that do not travel come back empty, and a received NodeUnavailableError claims the worst', () => {
    const quorum = overWire(SAMPLES.KV_QUORUM_NOT_MET) as QuorumNotMetError
    expect(quorum.replicas).toEqual([])
    expect((overWire(new NodeUnavailableError('n1', 'refused')) as NodeUnavailableError).mayHaveApplied).toBe(true)
  })

  it('a code from a newer node becomes an UnknownCodeError that names it: not fatal, and a write may have applied', () => {
    const e = errorFromWire({ code: 'KV_FROM_THE_FUTURE', message: 'something new' })
    expect(e).toBeInstanceOf(UnknownCodeError)
    expect(e.code).toBe('KV_UNKNOWN_CODE')
    expect(e.message).toBe('KV_FROM_THE_FUTURE: something new')
    expect([isFatal(e), mayHaveApplied(e), isRetryable(e), statusOf('KV_FROM_THE_FUTURE')]).toEqual([false, true, false, 502])
  })

  it('helpers read the registry for codes, errors and item errors; a throw without a code counts as KV_INTERNAL', () => {
    expect([isFatal('KV_INVALID_INPUT'), isFatal(SAMPLES.KV_TOO_MANY_SIBLINGS), isFatal({ code: 'KV_OVERLOADED', message: 'full' })]).toEqual([
      true,
      true,
      false,
    ])
    expect([statusOf('KV_UNKNOWN_STORE'), statusOf(new TypeError('bug')), statusOf(undefined)]).toEqual([404, 500, 500])
    expect(codeOf(new TypeError('bug'))).toBe('KV_INTERNAL')
    expect(mayHaveApplied(new TypeError('bug'))).toBe(true)
    expect([mayHaveApplied('KV_TIMEOUT'), mayHaveApplied('KV_OVERLOADED'), mayHaveApplied(SAMPLES.KV_STALE_METADATA)]).toEqual([true, false, false])
  })

  it('a NodeUnavailableError says for itself whether the request left', () => {
    expect(mayHaveApplied(new NodeUnavailableError('n1', 'ECONNREFUSED'))).toBe(false)
    expect(mayHaveApplied(new NodeUnavailableError('n1', 'ECONNRESET', { mayHaveApplied: true }))).toBe(true)
  })

  it('refusals of a wrong request are fatal and never leave a write behind', () => {
    for (const code of ['KV_INVALID_INPUT', 'KV_UNKNOWN_STORE', 'KV_TOO_MANY_SIBLINGS', 'KV_STALE_METADATA', 'KV_UNAUTHORIZED'] as const) {
      expect(ERROR_CODES[code]).toMatchObject({ fatal: true, mayHaveApplied: false })
    }
  })
})

/** The rows of the README's error tables, as {code: [status, write may have applied]}. */
function readmeErrorRows(): Map<string, { status: number; applied: string }> {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8')
  const start = readme.indexOf('Errors carry a stable `code`')
  expect(start).toBeGreaterThan(0)
  const section = readme.slice(start, readme.indexOf('\n## ', start))
  const rows = new Map<string, { status: number; applied: string }>()
  for (const line of section.split('\n')) {
    const cells = /^\| `(KV_[A-Z_]+)` \| (\d{3}) \| ([^|]+) \|/.exec(line)
    if (!cells) continue
    const [, code = '', status = '', applied = ''] = cells
    expect(rows.has(code), `${code} is listed twice`).toBe(false)
    rows.set(code, { status: Number(status), applied: applied.trim() })
  }
  return rows
}

describe("the README's error tables", () => {
  const rows = readmeErrorRows()

  it('list every code of the registry, and nothing else', () => {
    expect([...rows.keys()].sort()).toEqual([...ALL_ERROR_CODES].sort())
  })

  it.each(ALL_ERROR_CODES)('%s: status and "write may have applied" as the registry says', (code) => {
    const row = rows.get(code)
    expect(row?.status).toBe(ERROR_CODES[code].status)
    expect(row?.applied.startsWith(ERROR_CODES[code].mayHaveApplied ? 'maybe' : 'no')).toBe(true)
  })
})
