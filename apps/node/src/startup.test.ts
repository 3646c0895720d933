import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { NODE_MAIN, startNode, stopAllNodes } from '../../../test/support/node-process.js'
import { ENV, FLAGS, USAGE } from './options.js'

/** Each case starts one or two processes; this bounds it even without the repository's vitest config. */
const TEST_TIMEOUT_MS = 15_000
/** A node that refuses to start must be gone within this, ms. */
const EXIT_TIMEOUT_MS = 8000
const root = mkdtempSync(join(tmpdir(), 'kvorum-startup-'))
let dirs = 0
const freshDir = () => join(root, `case-${dirs++}`)
const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version

afterEach(stopAllNodes)
afterAll(() => rmSync(root, { recursive: true, force: true }))

interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Run kvorum-node to its exit (SIGKILL by PID if it outlives EXIT_TIMEOUT_MS, which fails the test). */
function run(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  const child = spawn(process.execPath, [NODE_MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH, ...env } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
      reject(new Error(`kvorum-node ${args.join(' ')} did not exit within ${EXIT_TIMEOUT_MS} ms:\n${stdout}${stderr}`))
    }, EXIT_TIMEOUT_MS)
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

/** A refusal as a user sees it: nothing on stdout, exactly one line on stderr naming the code, and the exit code. */
function expectRefusal(ran: Ran, code: string, exitCode: number, says: RegExp): void {
  expect(ran.stdout).toBe('')
  expect(ran.stderr.endsWith('\n')).toBe(true)
  expect(ran.stderr.trimEnd().split('\n')).toHaveLength(1)
  expect(ran.stderr).toMatch(new RegExp(`^kvorum-node: ${code}: `))
  expect(ran.stderr).toMatch(says)
  expect(ran.stderr).not.toMatch(/\n\s+at /)
  expect(ran.code).toBe(exitCode)
}

describe('kvorum-node --version and --help', () => {
  it('--version prints the package version and exits 0', async () => {
    const ran = await run(['--version'])
    expect(ran).toEqual({ code: 0, stdout: `kvorum-node ${version}\n`, stderr: '' })
  })

  it('--help (and -h) prints the whole help on stdout and exits 0', async () => {
    for (const flag of ['--help', '-h']) expect(await run([flag])).toEqual({ code: 0, stdout: `${USAGE}\n`, stderr: '' })
  })

  it('the help names every flag the parser takes and every environment variable read', () => {
    for (const flag of Object.keys(FLAGS)) expect(USAGE).toMatch(new RegExp(`--${flag}\\b`))
    for (const name of Object.values(ENV)) expect(USAGE).toContain(name)
  })
})

describe('kvorum-node refuses a bad command line in one line (KV_USAGE, exit 2), creating nothing', () => {
  const cases: [string, string[], RegExp][] = [
    ['a port over 65535', ['--port', '70000'], /--port must be a whole number in 0\.\.65535, got "70000"/],
    ['a port that is not a number', ['--port', '0x10'], /--port must be a whole number/],
    ['an empty port', ['--port', ''], /--port must be a whole number/],
    ['an unknown durability', ['--durability', 'fast'], /--durability must be normal or full, got "fast"/],
    ['an unknown log level', ['--log-level', 'loud'], /--log-level must be one of fatal, error, warn, info, debug, trace, silent/],
    ['a negative --max-hints', ['--max-hints=-1'], /--max-hints must be a whole number in 0\.\.100000000/],
    ['a --max-hints past its ceiling', ['--max-hints', '100000001'], /--max-hints must be a whole number/],
    ['a zero --max-hint-age-s', ['--max-hint-age-s', '0'], /--max-hint-age-s must be a whole number in 1\.\./],
    ['a --max-hint-age-s in exponent form', ['--max-hint-age-s', '1e3'], /--max-hint-age-s must be a whole number/],
    ['a zero --max-db-mib', ['--max-db-mib', '0'], /--max-db-mib must be a whole number in 1\.\.16777216, got "0"/],
    ['a --cache-mib under 4', ['--cache-mib', '1'], /--cache-mib must be a whole number in 4\.\.65536, got "1"/],
    ['a --mmap-mib that is not a number', ['--mmap-mib', 'lots'], /--mmap-mib must be a whole number in 0\.\.65536/],
    ['a zone with a space', ['--zone', 'eu west'], /--zone must be 1\.\.64 of/],
    ['an id the cluster definition would refuse', ['--id', 'n/1'], /--id must be 1\.\.64 of/],
    ['a token with a space', ['--token', 'two words'], /--token must be 1\.\.1024 visible ASCII/],
    ['both --token and --token-file', ['--token', 't', '--token-file', '/dev/null'], /give --token or --token-file, not both/],
    ['a token file that is missing', ['--metrics-token-file', '/nonexistent/token'], /cannot read --metrics-token-file \/nonexistent\/token: no such file/],
    [
      'a data token without an admin token (admin left open)',
      ['--data-token', 'd', '--metrics-token', 'm'],
      /--data-token, --admin-token and --metrics-token go together/,
    ],
    ['a certificate without its key', ['--tls-cert', '/dev/null'], /--tls-cert and --tls-key go together/],
    ['a config file that is missing', ['--config', '/nonexistent/node.json'], /cannot read --config \/nonexistent\/node\.json: no such file/],
    ['a config file that is not JSON', ['--config', '/proc/self/mounts'], /--config \/proc\/self\/mounts is not JSON/],
    ['an unknown flag', ['--prot', '7070'], /Unknown option '--prot'/],
    ['a flag without its value', ['--port'], /'--port <value>' argument missing/],
    ['a stray argument', ['start'], /Unexpected argument 'start'/],
  ]
  it.each(cases)('%s', async (_what, args, says) => {
    const data = freshDir()
    expectRefusal(await run(['--data', data, ...args]), 'KV_USAGE', 2, says)
    expect(existsSync(data)).toBe(false)
  })

  it('a bad setting from the environment or the config file names where it came from', async () => {
    expectRefusal(await run(['--data', freshDir()], { KVORUM_NODE_PORT: '70000' }), 'KV_USAGE', 2, /KVORUM_NODE_PORT must be a whole number in 0\.\.65535/)
    mkdirSync(root, { recursive: true })
    const config = join(root, 'bad-key.json')
    writeFileSync(config, JSON.stringify({ prot: 7070 }))
    expectRefusal(await run(['--data', freshDir(), '--config', config]), 'KV_USAGE', 2, /unknown key "prot"/)
    writeFileSync(config, JSON.stringify({ durability: 'fast' }))
    expectRefusal(await run(['--data', freshDir()], { KVORUM_NODE_CONFIG: config }), 'KV_USAGE', 2, /"durability" in .*bad-key\.json must be normal or full/)
    const tokens = join(root, 'three-tokens')
    writeFileSync(tokens, 'one\ntwo\nthree\n')
    expectRefusal(await run(['--data', freshDir(), '--token-file', tokens]), 'KV_USAGE', 2, /must hold 1\.\.2 tokens \(two while a rotation runs\)/)
  })

  it('a bad token in the environment is refused the same way, without echoing it', async () => {
    const ran = await run(['--data', freshDir()], { [ENV.metricsToken]: 'secret with spaces' })
    expectRefusal(ran, 'KV_USAGE', 2, new RegExp(`${ENV.metricsToken} must be 1\\.\\.1024 visible ASCII`))
    expect(ran.stderr).not.toContain('secret')
  })
})

describe('kvorum-node that cannot start says why in one line (exit 1) and leaves no open database behind', () => {
  it(
    'a busy port: KV_LISTEN_FAILED, and the database it had opened is closed cleanly',
    async () => {
      const first = await startNode({ data: freshDir() })
      const data = freshDir()
      const ran = await run(['--port', String(first.port), '--data', data, '--id', 'n2'])
      expectRefusal(ran, 'KV_LISTEN_FAILED', 1, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${first.port}: the port is in use`))
      // A clean close checkpoints and removes the WAL and marks the Merkle leaves snapshot valid.
      expect(readdirSync(data)).toEqual(['kvorum.db'])
      const db = new Database(join(data, 'kvorum.db'), { readonly: true })
      try {
        expect(db.prepare("SELECT v FROM meta WHERE k = 'leaves'").get()).toEqual({ v: 'clean' })
      } finally {
        db.close()
      }
      // The node that held the port is unharmed.
      expect((await fetch(`${first.url}/health`, { signal: AbortSignal.timeout(5000) })).status).toBe(200)
    },
    TEST_TIMEOUT_MS,
  )

  it('a --host that is not an address of this machine: KV_LISTEN_FAILED', async () => {
    const ran = await run(['--port', '0', '--host', '192.0.2.1', '--data', freshDir()])
    expectRefusal(ran, 'KV_LISTEN_FAILED', 1, /cannot listen on 192\.0\.2\.1:0: --host is not an address of this machine/)
  })

  it('a data directory that cannot be created (a file is in the way): KV_DATA_DIR', async () => {
    const file = join(freshDir(), 'a-file')
    mkdirSync(join(file, '..'), { recursive: true })
    writeFileSync(file, 'not a directory')
    expectRefusal(
      await run(['--port', '0', '--data', join(file, 'node')]),
      'KV_DATA_DIR',
      1,
      /cannot use data directory .*a-file\/node: it, or a directory above it, is a file/,
    )
    expectRefusal(await run(['--port', '0', '--data', file]), 'KV_DATA_DIR', 1, /cannot use data directory .*a-file: it, or a directory above it, is a file/)
  })

  it('a kvorum.db that is not a database: KV_DATA_DIR, and the file is left as it was', async () => {
    const data = freshDir()
    mkdirSync(data)
    const garbage = Buffer.alloc(8192, 'not sqlite ')
    writeFileSync(join(data, 'kvorum.db'), garbage)
    expectRefusal(await run(['--port', '0', '--data', data]), 'KV_DATA_DIR', 1, /cannot open .*kvorum\.db: file is not a database/)
    expect(readFileSync(join(data, 'kvorum.db'))).toEqual(garbage)
    expect(readdirSync(data)).toEqual(['kvorum.db'])
  })
})

describe('kvorum-node stops on SIGTERM whatever happened to its stdout', () => {
  it(
    'exits on SIGTERM after the reader of its stdout went away (kvorum-node ... | head -1)',
    async () => {
      const dir = freshDir()
      mkdirSync(dir, { recursive: true })
      const pidFile = join(dir, 'pid')
      // head reads the first line and exits: every later line the node writes meets a closed pipe.
      const shell = spawn(
        'bash',
        ['-c', `( "${process.execPath}" "${NODE_MAIN}" --port 0 --data "${dir}" --id n1 2>/dev/null & echo $! > "${pidFile}"; wait ) | head -1 > /dev/null`],
        {
          stdio: 'ignore',
        },
      )
      const alive = (pid: number) => {
        try {
          process.kill(pid, 0)
          return true
        } catch {
          return false
        }
      }
      let pid = 0
      for (let i = 0; i < 100 && !pid; i++) {
        await new Promise((r) => setTimeout(r, 50))
        if (existsSync(pidFile)) pid = Number(readFileSync(pidFile, 'utf8').trim()) || 0
      }
      expect(pid).toBeGreaterThan(0)
      // Wait for it to listen (its first line went to head, which has exited by now).
      await new Promise((r) => setTimeout(r, 1500))
      process.kill(pid, 'SIGTERM')
      for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100))
      const stillUp = alive(pid)
      if (stillUp) process.kill(pid, 'SIGKILL')
      if (shell.pid !== undefined && alive(shell.pid)) process.kill(shell.pid, 'SIGKILL')
      expect(stillUp, 'the node still ran 5 s after SIGTERM').toBe(false)
    },
    TEST_TIMEOUT_MS,
  )
})

describe('kvorum-node keeps serving when the reader of its stdout stops reading', () => {
  it('answers requests while its log pipe is full (a paused pager)', async () => {
    const dir = freshDir()
    mkdirSync(dir, { recursive: true })
    const child = spawn(process.execPath, [NODE_MAIN, '--port', '0', '--data', dir, '--id', 'n1', '--log-level', 'debug'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    })
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    // Read the first line (to learn the port), then never read again: the pipe fills.
    const first = await new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString())))
    child.stdout.pause()
    const port = Number(/"port":(\d+)/.exec(first)?.[1])
    expect(port).toBeGreaterThan(0)
    // An access line per request at debug: 600 requests write well over a pipe's 64 KiB.
    let answered = 0
    for (let i = 0; i < 600; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) })
      if (res.ok) answered++
      await res.arrayBuffer()
    }
    expect(answered).toBe(600)
    // A reader that never reads again holds the exit (README, "Running a storage node"): SIGKILL.
    if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
    await exited
  }, 30_000)
})
