import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** The built node binary; tests run after `npx tsc -b`. */
export const NODE_MAIN = fileURLToPath(new URL('../../apps/node/dist/main.js', import.meta.url))

/** How a node process ended. */
export interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

/** A running kvorum-node on 127.0.0.1. */
export interface NodeProcess {
  readonly pid: number
  readonly port: number
  readonly url: string
  /** The incarnation the node reported when it became ready. */
  readonly incarnation: string
  /** Resolves when the process has exited. */
  readonly exited: Promise<Exit>
  /** Send `signal` (default SIGTERM) and wait for the exit; SIGKILL if it does not come within timeoutMs. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>
  /** SIGKILL and wait for the exit. */
  kill9(): Promise<Exit>
  /** What the process wrote to stdout and stderr so far, for failure messages. */
  output(): string
}

export interface StartOptions {
  /** Directory of the node's SQLite database. */
  readonly data: string
  /** Port to listen on. Default 0: the OS picks one (reported in the ready message). */
  readonly port?: number
  /** Node id. Default `n1`. */
  readonly id?: string
  /** `normal` (default) or `full`. */
  readonly durability?: 'normal' | 'full'
  readonly token?: string
  /** More command-line flags for kvorum-node. */
  readonly args?: readonly string[]
  /** More environment variables (over this process's own). */
  readonly env?: NodeJS.ProcessEnv
  /** The node serves HTTPS (its args carry --tls-cert and --tls-key): the url is https://. Default false. */
  readonly https?: boolean
  /** How long to wait for the ready message, ms. Default 10,000. */
  readonly readyTimeoutMs?: number
}

/** Every process started and not yet seen to exit, so a failed test still leaves none behind. */
const running = new Map<number, NodeProcess>()

function exitOf(child: ChildProcess): Promise<Exit> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode })
    else child.once('exit', (code, signal) => resolve({ code, signal }))
  })
}

function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${timeoutMs} ms`)), timeoutMs)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Start `node apps/node/dist/main.js` and wait for its IPC ready message, which tells the port. */
export async function startNode(options: StartOptions): Promise<NodeProcess> {
  if (!existsSync(NODE_MAIN)) throw new Error(`${NODE_MAIN} is missing: run \`npx tsc -b\` first`)
  const args = [
    NODE_MAIN,
    '--port',
    String(options.port ?? 0),
    '--host',
    '127.0.0.1',
    '--data',
    options.data,
    '--id',
    options.id ?? 'n1',
    '--durability',
    options.durability ?? 'normal',
    '--log-level',
    'warn',
  ]
  if (options.token) args.push('--token', options.token)
  if (options.args) args.push(...options.args)
  const env = options.env ? { ...process.env, ...options.env } : process.env
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env })
  const pid = child.pid
  if (pid === undefined) throw new Error('kvorum-node did not start')
  let log = ''
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-8192)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const exited = exitOf(child)

  const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 8000): Promise<Exit> => {
    if (child.exitCode === null && child.signalCode === null) process.kill(pid, signal)
    try {
      return await within(exited, timeoutMs, `exit of node ${pid} after ${signal}`)
    } catch (e) {
      process.kill(pid, 'SIGKILL')
      await within(exited, 5000, `exit of node ${pid} after SIGKILL`)
      throw e
    }
  }
  const ready = new Promise<{ port: number; incarnation: string }>((resolve, reject) => {
    child.on('message', (m: { ready?: boolean; port?: number; incarnation?: string }) => {
      if (m.ready && typeof m.port === 'number') resolve({ port: m.port, incarnation: m.incarnation ?? '' })
    })
    void exited.then((exit) => reject(new Error(`kvorum-node exited before it was ready (${JSON.stringify(exit)}):\n${log}`)))
  })
  const node: NodeProcess = {
    pid,
    port: 0,
    url: '',
    incarnation: '',
    exited,
    stop,
    kill9: () => stop('SIGKILL'),
    output: () => log,
  }
  running.set(pid, node)
  void exited.then(() => running.delete(pid))
  try {
    const { port, incarnation } = await within(ready, options.readyTimeoutMs ?? 10_000, `ready message of node ${pid}`)
    return Object.assign(node, { port, url: `${options.https ? 'https' : 'http'}://127.0.0.1:${port}`, incarnation })
  } catch (e) {
    await stop('SIGKILL').catch(() => undefined)
    throw e
  }
}

/** SIGKILL every node process still running, by PID; for afterEach/afterAll. */
export async function stopAllNodes(): Promise<void> {
  await Promise.all([...running.values()].map((node) => node.kill9()))
}
