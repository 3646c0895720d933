import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { OutputWatch } from './output-watch.js'

/** The built CLI, run as an operator runs it; tests run after `npx tsc -b`. */
const CLI_MAIN = fileURLToPath(new URL('../../apps/cli/dist/main.js', import.meta.url))
/** Output kept per stream, characters. */
const OUTPUT_LIMIT = 64 * 1024

/** A running `kvorum` process. */
export interface Cli {
  readonly pid: number
  readonly exited: Promise<number | null>
  stdout(): string
  stderr(): string
  /** Resolves true once stdout matches `pattern`, false if the process exited first or `ms` passed. */
  waitForStdout(pattern: RegExp, ms: number): Promise<boolean>
  /** Send `signal` by PID (if still running) and wait for the exit; SIGKILL after 10 s. */
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

/** Every CLI process started and not yet seen to exit. */
const running = new Map<number, Cli>()
/** Node PIDs a `kvorum dev` reported, so a failed test still leaves none behind. */
const reportedPids = new Set<number>()

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode)
    else child.once('exit', (code) => resolve(code))
  })
}

/** Start `node apps/cli/dist/main.js ...args`. */
export function spawnCli(args: readonly string[], env: Record<string, string> = {}): Cli {
  if (!existsSync(CLI_MAIN)) throw new Error(`${CLI_MAIN} is missing: run \`npx tsc -b\` first`)
  const child = spawn(process.execPath, [CLI_MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  const pid = child.pid
  if (pid === undefined) throw new Error('kvorum did not start')
  let out = ''
  let err = ''
  const watch = new OutputWatch()
  child.stdout?.on('data', (chunk: Buffer) => {
    out = (out + chunk.toString()).slice(-OUTPUT_LIMIT)
    for (const pid of nodePids(out)) reportedPids.add(pid)
    watch.notify()
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    err = (err + chunk.toString()).slice(-OUTPUT_LIMIT)
  })
  const exited = exitOf(child)
  const cli: Cli = {
    pid,
    exited,
    stdout: () => out,
    stderr: () => err,
    waitForStdout(pattern, ms) {
      return watch.until(
        () => pattern.test(out),
        exited,
        () => pattern.test(out),
        ms,
      )
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, signal)
      const timer = setTimeout(() => child.exitCode === null && child.signalCode === null && process.kill(pid, 'SIGKILL'), 10_000)
      const code = await exited
      clearTimeout(timer)
      return code
    },
  }
  running.set(pid, cli)
  void exited.then(() => running.delete(pid))
  return cli
}

/** Run the CLI to its end (SIGKILL after `timeoutMs`): exit code and output. */
export async function runCli(
  args: readonly string[],
  timeoutMs = 20_000,
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const cli = spawnCli(args, env)
  const timer = setTimeout(() => void cli.stop('SIGKILL'), timeoutMs)
  const code = await cli.exited
  clearTimeout(timer)
  return { code, stdout: cli.stdout(), stderr: cli.stderr() }
}

/** The node PIDs `kvorum dev` printed as it spawned them ("n1 URL: pid 1234, log ..."). */
export function nodePids(stdout: string): number[] {
  return [...stdout.matchAll(/^ {2}n\d+ \S+: pid (\d+), log /gm)].map((m) => Number(m[1]))
}

/** True while a process with this PID exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** SIGKILL, by PID, every CLI process still running and every node a `kvorum dev` reported; for afterEach. */
export async function killLeftovers(): Promise<void> {
  await Promise.all([...running.values()].map((cli) => cli.stop('SIGKILL')))
  for (const pid of reportedPids) if (alive(pid)) process.kill(pid, 'SIGKILL')
  reportedPids.clear()
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** The first of `count` consecutive ports that are free on 127.0.0.1 now (up to 50 random tries). */
export async function freePorts(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000)
    let free = true
    for (let i = 0; i < count && free; i++) free = await portFree(base + i)
    if (free) return base
  }
  throw new Error(`no ${count} consecutive free ports found`)
}
