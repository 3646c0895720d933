import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { ROOT, cleanEnv, run } from './support/packages.js'
import { type GroupProcess, startGroup } from './support/process-group.js'
import { eventually } from './support/replicas.js'

/**
 * A newcomer's first minutes, after the README's `npm ci` (CI runs this suite right after it, in the same
 * checkout): `npm start` in one terminal, then the quick start's `npx kvorum` lines in another, as the README
 * writes them but pointed at this test's ports and data directory. The README's SDK example runs in
 * test/package.test.ts, in an application outside the repository.
 */

/** npx never asks the registry: a bin missing from the checkout fails, instead of fetching a package of that name. */
const OFFLINE = cleanEnv({ npm_config_offline: 'true' })
/** Nodes `npm start` starts by default. */
const DEV_NODES = 3
/** Attempts at finding DEV_NODES consecutive free ports. */
const PORT_ATTEMPTS = 20

/** The quick start's shell lines: the first `sh` block after "In another terminal". */
function quickStart(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const block = /In\s+another terminal[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1]
  expect(block, 'the README has the quick start').toBeDefined()
  return (block as string).split('\n').filter((line) => line.trim() !== '')
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** A base port with DEV_NODES free ports from it on 127.0.0.1. */
async function freeBasePort(): Promise<number> {
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000)
    const free = await Promise.all(Array.from({ length: DEV_NODES }, (_, i) => portIsFree(base + i)))
    if (free.every(Boolean)) return base
  }
  throw new Error(`no ${DEV_NODES} consecutive free ports found in ${PORT_ATTEMPTS} attempts`)
}

/** Ctrl-C, as a terminal sends it to the whole foreground group; then every process of the group must be gone. */
async function interrupt(start: GroupProcess): Promise<void> {
  start.signal('SIGINT')
  await eventually(() => !start.alive(), 20_000, 100)
}

it('after npm ci: npm start, then the README’s first put, get and status through npx kvorum', async () => {
  const lines = quickStart()
  for (const command of ['put', 'get', 'status'])
    expect(
      lines.some((line) => line.startsWith(`npx kvorum ${command} `)),
      command,
    ).toBe(true)
  const data = mkdtempSync(join(tmpdir(), 'kvorum-quick-start-'))
  const base = await freeBasePort()
  const seed = `http://127.0.0.1:${base}`
  // `npm start -- FLAGS` hands the flags to `kvorum dev`, the last command of the script.
  const start = startGroup('npm', ['start', '--', '--base-port', String(base), '--data', data], { cwd: ROOT, env: cleanEnv() })
  try {
    // The README: npm start prints the seed URL and the cluster token, kept in data/token.
    const tokenFile = join(data, 'token')
    await eventually(
      () => {
        if (!start.alive()) throw new Error(`npm start ended:\n${start.stdout()}\n${start.stderr()}`)
        return existsSync(tokenFile) && start.stdout().includes(readFileSync(tokenFile, 'utf8').trim()) && start.stdout().includes(seed)
      },
      60_000,
      100,
    )
    const script = lines.map((line) => line.replaceAll('http://127.0.0.1:7070', seed).replaceAll('data/token', tokenFile)).join('\n')
    const terminal = run('bash', ['-e', '-c', script], { cwd: ROOT, env: OFFLINE })
    expect(terminal.status, `${script}\n${terminal.stdout}\n${terminal.stderr}`).toBe(0)
    expect(terminal.stdout.split('\n')).toContain('world')
    // The command npm start suggests works as printed.
    const hint = /^try:\s+(npx kvorum put .*)$/m.exec(start.stdout())?.[1]
    expect(hint, start.stdout()).toBeDefined()
    const tried = run('bash', ['-e', '-c', hint as string], { cwd: ROOT, env: OFFLINE })
    expect(tried.status, `${hint}\n${tried.stdout}\n${tried.stderr}`).toBe(0)
    await interrupt(start)
    expect(start.stdout()).toMatch(/stopped/)
  } finally {
    await start.kill()
    rmSync(data, { recursive: true, force: true })
  }
}, 120_000)

it('npx kvorum-node answers from the repository root', () => {
  const help = run('npx', ['kvorum-node', '--help'], { cwd: ROOT, env: OFFLINE })
  expect(help.status, help.stderr).toBe(0)
  expect(help.stdout).toMatch(/^kvorum-node: /)
})
