import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** The built CLI, run as a user runs it; tests run after `npx tsc -b`. */
export const CLI_MAIN = fileURLToPath(new URL('../../apps/cli/dist/main.js', import.meta.url))

/** What one CLI run printed and how it ended. */
export interface CliRun {
  readonly code: number | null
  readonly stdout: string
  /** stdout as bytes, for values that are not text. */
  readonly stdoutBytes: Buffer
  readonly stderr: string
}

export interface CliRunOptions {
  /** Written to its stdin, then stdin is closed. Default: stdin closed at once. */
  readonly input?: string | Uint8Array
  /** Keep stdin open (and write nothing) until the process ends. Default false. */
  readonly holdStdin?: boolean
  /** Environment on top of a copy of this process's with every KVORUM_* variable removed. */
  readonly env?: Readonly<Record<string, string>>
  /** SIGKILL (by PID) after this long, ms. Default 20,000. */
  readonly timeoutMs?: number
  readonly cwd?: string
  /** Node.js flags before the CLI's path (e.g. `--import` of a module that plants a fault). */
  readonly nodeArgs?: readonly string[]
}

/** Most output kept from one run, bytes. */
const OUTPUT_LIMIT = 4 * 1024 * 1024

/** Run `node apps/cli/dist/main.js ...args` to its end and collect what it printed. */
export function runCli(args: readonly string[], options: CliRunOptions = {}): Promise<CliRun> {
  if (!existsSync(CLI_MAIN)) throw new Error(`${CLI_MAIN} is missing: run \`npx tsc -b\` first`)
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('KVORUM_')) env[k] = v
  Object.assign(env, options.env)
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), CLI_MAIN, ...args], { env, cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] })
  const pid = child.pid
  if (pid === undefined) throw new Error('kvorum CLI process did not start')
  const out: Buffer[] = []
  const err: Buffer[] = []
  let kept = 0
  const keep = (into: Buffer[]) => (chunk: Buffer) => {
    if (kept + chunk.length > OUTPUT_LIMIT) return
    kept += chunk.length
    into.push(chunk)
  }
  child.stdout.on('data', keep(out))
  child.stderr.on('data', keep(err))
  child.stdin.on('error', () => undefined)
  if (!options.holdStdin) child.stdin.end(options.input ?? '')
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      process.kill(pid, 'SIGKILL')
      reject(new Error(`kvorum ${args.join(' ')} did not end within ${options.timeoutMs ?? 20_000} ms:\n${Buffer.concat(err).toString()}`))
    }, options.timeoutMs ?? 20_000)
    child.once('error', reject)
    child.once('close', (code) => {
      clearTimeout(timer)
      const stdoutBytes = Buffer.concat(out)
      resolve({ code, stdout: stdoutBytes.toString(), stdoutBytes, stderr: Buffer.concat(err).toString() })
    })
  })
}
