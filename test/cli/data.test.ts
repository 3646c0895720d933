import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ProcessCluster, startCluster } from '../support/process-cluster.js'
import { type CliRun, runCli } from './run-cli.js'

// get/put/delete through the built `kvorum` binary against three real nodes.

let cluster: ProcessCluster
let dir: string
/** Seeds as an operator types them: host:port, no scheme. */
let seeds: string
let env: Record<string, string>

const kv = (args: string[], options: { input?: string | Uint8Array; env?: Record<string, string> } = {}) =>
  runCli(args, { ...options, env: { ...env, ...options.env } })

/** The context a get printed, from its JSON form. */
async function contextOf(store: string, key: string): Promise<string> {
  const got = await kv(['get', store, key, '--json'])
  return (JSON.parse(got.stdout) as { context: string }).context
}

function oneErrorLine(run: CliRun, code: string): void {
  expect(run.stderr.trimEnd().split('\n'), run.stderr).toHaveLength(1)
  expect(run.stderr).toMatch(new RegExp(`^kvorum: ${code}: `))
  expect(run.stderr).not.toMatch(/\n\s+at /)
}

beforeAll(async () => {
  cluster = await startCluster({ nodes: 3, partitions: 16, stores: [{ name: 'default' }, { name: 'last', conflict: 'lww' }, { name: 'brief', ttlMs: 300 }] })
  dir = mkdtempSync(join(tmpdir(), 'kvorum-cli-'))
  seeds = cluster.seeds.map((u) => u.replace('http://', '')).join(',')
  // KVORUM_SEEDS and KVORUM_TOKEN stand in for --seeds and --token in every run below.
  env = { KVORUM_SEEDS: seeds, KVORUM_TOKEN: cluster.token }
}, 60_000)

afterAll(async () => {
  await cluster?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('seeds, token and exit codes', { timeout: 60_000 }, () => {
  it('takes host:port seeds and the token from --seeds/--token or KVORUM_SEEDS/KVORUM_TOKEN', async () => {
    const flags = ['--seeds', seeds, '--token', cluster.token]
    expect((await runCli(['put', 'default', 'flagged', 'by-flag', ...flags])).code).toBe(0)
    const got = await kv(['get', 'default', 'flagged'])
    expect(got.code).toBe(0)
    expect(got.stdout.split('\n')[0]).toBe('by-flag')
  })

  it('a missing key exits 0, or 3 with --fail-missing', async () => {
    const plain = await kv(['get', 'default', 'never-written'])
    expect(plain.code).toBe(0)
    expect(plain.stdout).toContain('(not found)')
    const strict = await kv(['get', 'default', 'never-written', '--fail-missing'])
    expect(strict.code).toBe(3)
  })

  it('a wrong token is an operation error (exit 1), one line, no stack', async () => {
    const run = await kv(['get', 'default', 'x'], { env: { KVORUM_TOKEN: 'wrong' } })
    expect(run.code).toBe(1)
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1)
    expect(run.stderr).toMatch(/^kvorum: KV_[A-Z_]+: /)
  })

  it('an unknown store prints "kvorum: KV_UNKNOWN_STORE: ..." on one line, exit 1', async () => {
    const run = await kv(['get', 'nosuch', 'x'])
    expect(run.code).toBe(1)
    oneErrorLine(run, 'KV_UNKNOWN_STORE')
  })
})

describe('values from arguments, stdin and files', { timeout: 60_000 }, () => {
  it('reads a value from stdin with -, byte for byte', async () => {
    expect((await kv(['put', 'default', 'stdin', '-'], { input: 'line one\nline two\n' })).code).toBe(0)
    const got = await kv(['get', 'default', 'stdin', '--raw'])
    expect(got.stdout).toBe('line one\nline two\n')
    expect(got.stderr).toMatch(/^context: \S+/)
  })

  it('reads a value from a file with @path', async () => {
    const file = join(dir, 'value.txt')
    writeFileSync(file, 'from a file')
    expect((await kv(['put', 'default', 'file', `@${file}`])).code).toBe(0)
    expect((await kv(['get', 'default', 'file', '--raw'])).stdout).toBe('from a file')
  })

  it('--literal stores "@..." as given; a missing @file is a one-line KV_INVALID_INPUT and writes nothing', async () => {
    expect((await kv(['put', 'default', 'at', '@not-a-file', '--literal'])).code).toBe(0)
    expect((await kv(['get', 'default', 'at', '--raw'])).stdout).toBe('@not-a-file')
    const missing = await kv(['put', 'default', 'missing-file', `@${join(dir, 'nope')}`])
    expect(missing.code).toBe(1)
    oneErrorLine(missing, 'KV_INVALID_INPUT')
    expect(missing.stderr).toContain('no such file')
    expect((await kv(['get', 'default', 'missing-file', '--fail-missing'])).code).toBe(3)
  })
})

describe('--codec', { timeout: 60_000 }, () => {
  const binary = Buffer.from([0xff, 0x00, 0xfe, 0x80, 0x41])

  it('a binary value under the default utf8 codec is printed as base64 with a note, not a crash', async () => {
    const file = join(dir, 'binary.bin')
    writeFileSync(file, binary)
    expect((await kv(['put', 'default', 'bin', `@${file}`, '--codec', 'bytes'])).code).toBe(0)
    const got = await kv(['get', 'default', 'bin'])
    expect(got.code).toBe(0)
    expect(got.stdout.split('\n')[0]).toBe(binary.toString('base64'))
    expect(got.stderr).toContain('not UTF-8 text, printed as base64')
    expect(got.stderr).not.toContain('TypeError')
    const json = JSON.parse((await kv(['get', 'default', 'bin', '--json'])).stdout) as { values: unknown[] }
    expect(json.values).toEqual([{ base64: binary.toString('base64') }])
  })

  it('bytes: printed as base64, --raw writes the bytes, an argument is base64', async () => {
    const b64 = await kv(['get', 'default', 'bin', '--codec', 'bytes'])
    expect(b64.stdout.split('\n')[0]).toBe(binary.toString('base64'))
    expect(b64.stderr).toBe('')
    expect((await kv(['get', 'default', 'bin', '--raw'])).stdoutBytes.equals(binary)).toBe(true)
    expect((await kv(['put', 'default', 'b64', 'AAEC/w==', '--codec', 'bytes'])).code).toBe(0)
    expect((await kv(['get', 'default', 'b64', '--raw'])).stdoutBytes.equals(Buffer.from([0, 1, 2, 255]))).toBe(true)
    const bad = await kv(['put', 'default', 'b64-bad', 'not base64!', '--codec', 'bytes'])
    expect(bad.code).toBe(1)
    oneErrorLine(bad, 'KV_INVALID_INPUT')
  })

  it('utf8 refuses a file that is not text, and writes nothing', async () => {
    const run = await kv(['put', 'default', 'bin-as-text', `@${join(dir, 'binary.bin')}`])
    expect(run.code).toBe(1)
    oneErrorLine(run, 'KV_INVALID_INPUT')
    expect(run.stderr).toContain('--codec bytes')
    expect((await kv(['get', 'default', 'bin-as-text', '--fail-missing'])).code).toBe(3)
  })

  it('json: validated on put and stored compact; printed indented, or one line with --compact', async () => {
    expect((await kv(['put', 'default', 'doc', '{ "items": [1, 2],  "n": "x" }', '--codec', 'json'])).code).toBe(0)
    expect((await kv(['get', 'default', 'doc', '--raw'])).stdout).toBe('{"items":[1,2],"n":"x"}')
    const pretty = await kv(['get', 'default', 'doc', '--codec', 'json'])
    expect(pretty.stdout).toBe(`${JSON.stringify({ items: [1, 2], n: 'x' }, null, 2)}\ncontext: ${await contextOf('default', 'doc')}\n`)
    expect((await kv(['get', 'default', 'doc', '--codec', 'json', '--compact'])).stdout.split('\n')[0]).toBe('{"items":[1,2],"n":"x"}')
    const json = JSON.parse((await kv(['get', 'default', 'doc', '--codec', 'json', '--json'])).stdout) as { values: unknown[] }
    expect(json.values).toEqual([{ items: [1, 2], n: 'x' }])
    const invalid = await kv(['put', 'default', 'not-doc', '{items:', '--codec', 'json'])
    expect(invalid.code).toBe(1)
    oneErrorLine(invalid, 'KV_INVALID_INPUT')
    expect((await kv(['get', 'default', 'not-doc', '--fail-missing'])).code).toBe(3)
  })

  it('json: a stored value that is not JSON is a one-line error naming --codec utf8', async () => {
    await kv(['put', 'default', 'plain', 'just text'])
    const run = await kv(['get', 'default', 'plain', '--codec', 'json'])
    expect(run.code).toBe(1)
    oneErrorLine(run, 'KV_INVALID_INPUT')
    expect(run.stderr).toContain('--codec utf8')
  })
})

describe('blind puts', { timeout: 60_000 }, () => {
  it('a blind put beside an existing version says so; a put with the context replaces it quietly', async () => {
    const first = await kv(['put', 'default', 'cart', 'apple'])
    expect(first.stderr).toBe('')
    const blind = await kv(['put', 'default', 'cart', 'pear'])
    expect(blind.code).toBe(0)
    expect(blind.stderr).toBe('kvorum: stored beside 1 version; pass --context to replace (kvorum get prints it)\n')
    const both = await kv(['get', 'default', 'cart'])
    expect(both.stdout).toMatch(/^2 siblings:\n/)
    const raw = await kv(['get', 'default', 'cart', '--raw'])
    expect(raw.code).toBe(1)
    oneErrorLine(raw, 'KV_INVALID_INPUT')
    expect(raw.stdout).toBe('')
    expect(JSON.parse((await kv(['put', 'default', 'cart', 'fig', '--json'])).stdout)).toMatchObject({ ok: true, storedBeside: 2 })
    const replace = await kv(['put', 'default', 'cart', 'apple+pear', '--context', await contextOf('default', 'cart')])
    expect(replace.stderr).toBe('')
    expect((await kv(['get', 'default', 'cart'])).stdout.split('\n')[0]).toBe('apple+pear')
  })

  it('says nothing after a delete, or in a last-writer-wins store', async () => {
    await kv(['put', 'default', 'gone', 'v1'])
    expect((await kv(['delete', 'default', 'gone'])).code).toBe(0)
    expect((await kv(['put', 'default', 'gone', 'v2'])).stderr).toBe('')
    await kv(['put', 'last', 'k', 'v1'])
    expect((await kv(['put', 'last', 'k', 'v2'])).stderr).toBe('')
    expect((await kv(['get', 'last', 'k'])).stdout.split('\n')[0]).toBe('v2')
  })
})

describe('--r, --w and --timeout per call', { timeout: 60_000 }, () => {
  it('passes r and w to the call: a quorum over n is refused by the SDK, w=3 succeeds with every node up', async () => {
    const over = await kv(['get', 'default', 'cart', '--r', '4'])
    expect(over.code).toBe(1)
    oneErrorLine(over, 'KV_INVALID_INPUT')
    expect(over.stderr).toContain('r must be an integer 1..3')
    expect((await kv(['put', 'default', 'all-three', 'v', '--w', '3'])).code).toBe(0)
    const bad = await kv(['delete', 'default', 'all-three', '--w', 'x'])
    expect(bad.code).toBe(2)
  })

  it('--timeout bounds the call: w=3 with a node paused gives up after the timeout, not the default 3 s', async () => {
    cluster.pause('n3')
    try {
      const started = performance.now()
      const run = await kv(['put', 'default', 'slow', 'v', '--w', '3', '--timeout', '400ms'])
      const elapsedMs = performance.now() - started
      expect(run.code).toBe(1)
      oneErrorLine(run, 'KV_TIMEOUT')
      expect(elapsedMs).toBeLessThan(2500)
    } finally {
      cluster.resume('n3')
    }
  })
})

describe('put --ttl-ms', { timeout: 60_000 }, () => {
  /** Sleep past a 300 ms ttl stamped at a write that has returned. */
  const pastTtl = () => new Promise((done) => setTimeout(done, 400))

  it('a value put with a short ttl reads as absent after it; one with a long ttl, or none, stays', async () => {
    const short = await kv(['put', 'default', 'ttl-short', 'gone-soon', '--ttl-ms', '300'])
    expect(short.code, short.stderr).toBe(0)
    expect((await kv(['put', 'default', 'ttl-long', 'stays', '--ttl-ms', '600000'])).code).toBe(0)
    expect((await kv(['put', 'default', 'ttl-none', 'stays'])).code).toBe(0)
    // The coordinating node stamps the expiry at the write, before the put returned.
    await pastTtl()
    const gone = await kv(['get', 'default', 'ttl-short', '--json', '--r', '3'])
    expect(JSON.parse(gone.stdout)).toMatchObject({ found: false, values: [] })
    expect((await kv(['get', 'default', 'ttl-short', '--fail-missing'])).code).toBe(3)
    expect((await kv(['get', 'default', 'ttl-long'])).stdout.split('\n')[0]).toBe('stays')
    expect((await kv(['get', 'default', 'ttl-none'])).stdout.split('\n')[0]).toBe('stays')
  })

  it('--ttl-ms 0 keeps a value in a store whose ttlMs would expire it', async () => {
    expect((await kv(['put', 'brief', 'kept', 'v', '--ttl-ms', '0'])).code).toBe(0)
    expect((await kv(['put', 'brief', 'default-ttl', 'v'])).code).toBe(0)
    await pastTtl()
    expect((await kv(['get', 'brief', 'kept'])).stdout.split('\n')[0]).toBe('v')
    expect((await kv(['get', 'brief', 'default-ttl', '--fail-missing'])).code).toBe(3)
  })

  it('a bad --ttl-ms is a usage mistake (exit 2, as every bad flag value) naming the range, and writes nothing', async () => {
    for (const bad of ['-5', 'soon', '1.5', '2s', String(10 * 365 * 24 * 3600 * 1000 + 1)]) {
      const run = await kv(['put', 'default', 'ttl-bad', 'v', `--ttl-ms=${bad}`])
      expect(run.code, bad).toBe(2)
      expect(run.stderr.split('\n')[0], bad).toBe(`kvorum put: --ttl-ms must be an integer 0..315360000000, got ${bad}`)
    }
    expect((await kv(['get', 'default', 'ttl-bad', '--fail-missing'])).code).toBe(3)
  })
})
