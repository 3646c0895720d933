import { nodePackageFile } from './node-package.js'
import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, openSync, readSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { HttpTransport } from '@kvorum/client'
import { NodeUnavailableError, PortInUseError } from '@kvorum/core'

const require = createRequire(import.meta.url)

/** How long a node may take from spawn to its ready message, ms. */
const READY_TIMEOUT_MS = 15_000
/** How long the /health check after the ready message may take, ms. */
const HEALTH_TIMEOUT_MS = 3000
/** The end of a node's log read for an error message, bytes. */
const LOG_TAIL_BYTES = 4096

/** Path of the kvorum-node entry point. */
export function nodeMainPath(): string {
  return nodePackageFile(() => require.resolve('kvorum-node/main'))
}

/** One node process started by this CLI. */
export interface LocalNode {
  readonly id: string
  readonly url: string
  readonly port: number
  readonly pid: number
  /** The file the node's stdout and stderr are appended to: `<dataDir>/<id>/node.log`. */
  readonly logPath: string
  /** Size of the log before this process started, so a follower can show only this run. */
  readonly logOffset: number
  readonly child: ChildProcess
  readonly exited: Promise<number | null>
}

/** HTTPS for a local cluster: each node's certificate and key files, and the CA (PEM) that signed them. */
export interface LocalTls {
  readonly certFile: string
  readonly keyFile: string
  readonly ca: string
}

export interface LocalClusterOptions {
  readonly nodes: number
  readonly basePort: number
  readonly dataDir: string
  /** The cluster token (every role), handed to each node in its environment. Default none: open nodes. */
  readonly token?: string
  /** A file holding the token, which each node reads itself (--token-file): then neither argv nor the environment holds it. Default none. */
  readonly tokenFile?: string
  readonly durability?: 'normal' | 'full'
  /** pino level of the nodes' logs. Default `info`. */
  readonly logLevel?: string
  /** Extra Node.js flags for each node process (profiling: `--cpu-prof --cpu-prof-dir=DIR`). */
  readonly nodeFlags?: readonly string[]
  /** Serve HTTPS with these files (the URLs are https://). Default plain HTTP. */
  readonly tls?: LocalTls
  /** Called as each node is spawned, before it is ready: whoever stops the cluster on a signal must know it. */
  readonly onSpawn?: (node: LocalNode) => void
}

/** True when nothing listens on 127.0.0.1:`port` (checked by listening on it for a moment). */
function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const server = createServer()
    server.once('error', () => res(false))
    server.listen({ port, host: '127.0.0.1' }, () => server.close(() => res(true)))
  })
}

/** Refuse, naming the port, when any of `ports` is taken; nothing is started. */
export async function checkPortsFree(ports: readonly number[]): Promise<void> {
  for (const port of ports) {
    if (!(await portFree(port)))
      throw new PortInUseError(`port ${port} on 127.0.0.1 is in use (another program, or a kvorum dev still running): stop it, or pass another --base-port`)
  }
}

/** The last line of a node's log, for an error message. */
function lastLogLine(path: string): string {
  if (!existsSync(path)) return ''
  const size = statSync(path).size
  const length = Math.min(size, LOG_TAIL_BYTES)
  const tail = Buffer.alloc(length)
  const fd = openSync(path, 'r')
  try {
    readSync(fd, tail, 0, length, size - length)
  } finally {
    closeSync(fd)
  }
  const text = tail.toString('utf8')
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .pop() ?? ''
  )
}

/**
 * Check that `url` is served by the node we started: its /health must answer
 * with `id` and the incarnation the process reported, or another process holds the port.
 */
export async function checkHealth(url: string, port: number, id: string, incarnation: string, ca?: string): Promise<void> {
  const transport = new HttpTransport(ca ? { tls: { ca } } : {})
  try {
    const health = await transport.node({ id, url }).health({ timeoutMs: HEALTH_TIMEOUT_MS })
    if (health.id !== id || health.incarnation !== incarnation) {
      const who = health.id === id ? `another process of node ${id}` : `another process (node id "${health.id}", not ${id})`
      throw new PortInUseError(`port ${port} is answered by ${who}: stop it, or pass another --base-port`)
    }
  } finally {
    await transport.close()
  }
}

/** Wait for the node's ready message, then check that /health is answered by it. */
async function waitReady(node: LocalNode, ca: string | undefined): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const ready = new Promise<string>((res, rej) => {
    node.child.on('message', (m: { ready?: boolean; incarnation?: string }) => {
      if (m.ready) res(m.incarnation ?? '')
    })
    void node.exited.then((code) => {
      rej(new NodeUnavailableError(node.id, `exited with code ${code} before it was ready; its log ${node.logPath} ends: ${lastLogLine(node.logPath)}`))
    })
    timer = setTimeout(() => rej(new NodeUnavailableError(node.id, `not ready within ${READY_TIMEOUT_MS} ms; see its log ${node.logPath}`)), READY_TIMEOUT_MS)
  })
  try {
    const incarnation = await ready
    await checkHealth(node.url, node.port, node.id, incarnation, ca)
  } finally {
    clearTimeout(timer)
  }
  // The channel served only the ready message; without it the node does not depend on this process.
  if (node.child.connected) node.child.disconnect()
}

function spawnNode(opts: LocalClusterOptions, i: number): LocalNode {
  const id = `n${i + 1}`
  const port = opts.basePort + i
  const dir = resolve(join(opts.dataDir, id))
  mkdirSync(dir, { recursive: true })
  const logPath = join(dir, 'node.log')
  const logOffset = existsSync(logPath) ? statSync(logPath).size : 0
  const args = [
    ...(opts.nodeFlags ?? []),
    nodeMainPath(),
    ...['--id', id, '--port', String(port), '--data', dir, '--durability', opts.durability ?? 'normal', '--log-level', opts.logLevel ?? 'info'],
  ]
  // The token goes in a file or the environment: on the command line, anyone on the machine could read it with ps.
  const { KVORUM_NODE_TOKEN: _inherited, ...rest } = process.env
  if (opts.tokenFile) args.push('--token-file', opts.tokenFile)
  if (opts.tls) args.push('--tls-cert', opts.tls.certFile, '--tls-key', opts.tls.keyFile)
  const env = opts.token && !opts.tokenFile ? { ...rest, KVORUM_NODE_TOKEN: opts.token } : rest
  const log = openSync(logPath, 'a')
  try {
    const child = spawn(process.execPath, args, { stdio: ['ignore', log, log, 'ipc'], env })
    const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)))
    if (child.pid === undefined) throw new NodeUnavailableError(id, 'the process did not start')
    return { id, port, pid: child.pid, url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`, logPath, logOffset, child, exited }
  } finally {
    closeSync(log)
  }
}

/**
 * Start `nodes` kvorum-node processes on 127.0.0.1, each logging to its own
 * file, after checking every port is free; each must report ready and answer
 * /health as itself. On any failure every node started is stopped first.
 */
export async function startNodes(opts: LocalClusterOptions): Promise<LocalNode[]> {
  await checkPortsFree(Array.from({ length: opts.nodes }, (_, i) => opts.basePort + i))
  const started: LocalNode[] = []
  try {
    for (let i = 0; i < opts.nodes; i++) {
      const node = spawnNode(opts, i)
      started.push(node)
      opts.onSpawn?.(node)
    }
    await Promise.all(started.map((node) => waitReady(node, opts.tls?.ca)))
    return started
  } catch (e) {
    await stopNodes(started)
    throw e
  }
}

/** SIGTERM every node by PID and wait for it to exit (SIGKILL after `graceMs`). */
export async function stopNodes(nodes: readonly LocalNode[], graceMs = 8000): Promise<void> {
  await Promise.all(
    nodes.map(async (n) => {
      if (n.child.exitCode !== null || n.child.signalCode !== null) return
      n.child.kill('SIGTERM')
      const timer = setTimeout(() => n.child.kill('SIGKILL'), graceMs)
      await n.exited
      clearTimeout(timer)
    }),
  )
}
