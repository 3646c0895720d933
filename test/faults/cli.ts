import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { OutputWatch } from '../support/output-watch.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
/** The built CLI, run as an operator would run it; tests run after `npx tsc -b`. */
const CLI_MAIN = fileURLToPath(new URL('../../apps/cli/dist/main.js', import.meta.url))

/** Most of a CLI process's stderr kept for failure messages, characters. */
const OUTPUT_LIMIT = 16_384

/** A running `kvorum` CLI process. */
export interface CliProcess {
  readonly pid: number
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /**
   * Resolves true once `count` lines of its stderr matched `pattern`, false
   * if it exited first or `ms` passed.
   */
  waitFor(pattern: RegExp, count: number, ms: number): Promise<boolean>
  /** SIGKILL by PID (if still running) and wait for the exit. */
  kill(): Promise<void>
  /** SIGSTOP / SIGCONT by PID (if still running): freeze it at whatever it is doing. */
  pause(): void
  resume(): void
  /** What it wrote, stdout then stderr, for failure messages. */
  output(): string
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode })
    else child.once('exit', (code, signal) => resolve({ code, signal }))
  })
}

/** Start `node apps/cli/dist/main.js ...args`. */
export function spawnCli(args: readonly string[]): CliProcess {
  if (!existsSync(CLI_MAIN)) throw new Error(`${CLI_MAIN} is missing: run \`npx tsc -b\` first`)
  const child = spawn(process.execPath, [CLI_MAIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  const pid = child.pid
  if (pid === undefined) throw new Error('kvorum CLI process did not start')
  let stdout = ''
  let stderr = ''
  let partial = ''
  const lines: string[] = []
  const watch = new OutputWatch()
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout = (stdout + chunk.toString()).slice(-OUTPUT_LIMIT)
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    const text = chunk.toString()
    stderr = (stderr + text).slice(-OUTPUT_LIMIT)
    const parts = (partial + text).split('\n')
    partial = parts.pop() ?? ''
    lines.push(...parts)
    watch.notify()
  })
  const exited = exitOf(child)
  return {
    pid,
    exited,
    waitFor(pattern, count, ms) {
      return watch.until(
        () => lines.filter((l) => pattern.test(l)).length >= count,
        exited,
        () => false,
        ms,
      )
    },
    async kill() {
      // SIGKILL ends a SIGSTOPped process too.
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL')
      await exited
    },
    pause() {
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGSTOP')
    },
    resume() {
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGCONT')
    },
    output: () => `${stdout}${stderr}`,
  }
}
