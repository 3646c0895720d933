import { spawn } from 'node:child_process'

/** How a command started in its own process group ended, and what it wrote. */
export interface GroupResult {
  readonly status: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** A command running as the leader of its own process group: it and whatever it starts (npm → sh → node → nodes). */
export interface GroupProcess {
  /** The leader's PID, which is also the group's id. */
  readonly pid: number
  readonly stdout: () => string
  readonly stderr: () => string
  readonly exited: Promise<GroupResult>
  /** Send a signal to every process of the group, as a terminal's Ctrl-C does (SIGINT). */
  signal(signal: NodeJS.Signals): void
  /** True while any process of the group is alive. */
  alive(): boolean
  /** SIGKILL whatever is left of the group, by its id, and wait for the leader's exit. */
  kill(): Promise<GroupResult>
}

/** Output kept per stream, characters: enough for a failure message. */
const KEEP_CHARS = 64 * 1024

export function startGroup(command: string, args: readonly string[], options: { cwd: string; env: NodeJS.ProcessEnv }): GroupProcess {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  const pid = child.pid
  if (pid === undefined) throw new Error(`${command} did not start`)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => {
    stdout = (stdout + chunk.toString()).slice(-KEEP_CHARS)
  })
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-KEEP_CHARS)
  })
  const exited = new Promise<GroupResult>((resolve) => {
    child.once('close', (status, signal) => resolve({ status, signal, stdout, stderr }))
  })
  const signalGroup = (signal: NodeJS.Signals | 0): boolean => {
    try {
      process.kill(-pid, signal)
      return true
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false
      throw e
    }
  }
  return {
    pid,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    signal: (signal) => void signalGroup(signal),
    alive: () => signalGroup(0),
    async kill() {
      signalGroup('SIGKILL')
      return exited
    },
  }
}

/** Run a command in its own group to its end within `timeoutMs`; then SIGKILL whatever it left running in the group. */
export async function runGroup(
  command: string,
  args: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<GroupResult> {
  const group = startGroup(command, args, options)
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), options.timeoutMs)
  })
  try {
    const result = await Promise.race([group.exited, timeout])
    if (result === 'timeout') throw new Error(`${command} ${args.join(' ')} did not end within ${options.timeoutMs} ms:\n${group.stdout()}\n${group.stderr()}`)
    return result
  } finally {
    clearTimeout(timer)
    await group.kill()
  }
}
