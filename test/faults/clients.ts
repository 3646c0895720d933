import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { ParentMessage, WorkerConfig, WorkerEvent } from './protocol.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url))

/** How long a client process may take to load, and to finish after it was told to stop, ms. */
const READY_TIMEOUT_MS = 15_000
const STOP_TIMEOUT_MS = 15_000

/** A running fault-suite client process. */
export interface ClientProcess {
  readonly worker: number
  readonly pid: number
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  start(config: WorkerConfig): void
  /** Park its loops between operations (its SDK goes idle) until {@link release}. */
  hold(): void
  release(): void
  /** Ask it to stop starting operations, wait for its exit; SIGKILL (by PID) if it does not come. */
  stop(): Promise<void>
  /** What it wrote to stderr, for failure messages. */
  output(): string
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode })
    else child.once('exit', (code, signal) => resolve({ code, signal }))
  })
}

function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)))
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * Start `node --conditions=kvorum-source --import tsx test/faults/worker.ts` with IPC and wait until it is ready
 * for its config. The condition makes the worker's SDK the source beside the test, as vitest resolves it.
 */
export async function spawnClient(worker: number, onEvent: (worker: number, event: WorkerEvent) => void): Promise<ClientProcess> {
  const child = spawn(process.execPath, ['--conditions=kvorum-source', '--import', 'tsx', WORKER], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
  const pid = child.pid
  if (pid === undefined) throw new Error('fault client process did not start')
  let log = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-8192)
  })
  const exited = exitOf(child)
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (event: WorkerEvent) => {
      if (event.type === 'ready') resolve()
      else onEvent(worker, event)
    })
    void exited.then((exit) => reject(new Error(`fault client ${worker} exited before it was ready (${JSON.stringify(exit)}):\n${log}`)))
  })
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL')
    await exited
  }
  if ((await within(ready, READY_TIMEOUT_MS)) === 'timeout') {
    await kill()
    throw new Error(`fault client ${worker} was not ready within ${READY_TIMEOUT_MS} ms:\n${log}`)
  }
  const tell = (message: ParentMessage) => {
    if (child.connected) child.send(message)
  }
  return {
    worker,
    pid,
    exited,
    start: (config) => tell({ type: 'start', config }),
    hold: () => tell({ type: 'hold' }),
    release: () => tell({ type: 'release' }),
    async stop() {
      tell({ type: 'stop' })
      if ((await within(exited, STOP_TIMEOUT_MS)) === 'timeout') await kill()
    },
    output: () => log,
  }
}
