import { nodePackageFile } from './node-package.js'
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'

const require = createRequire(import.meta.url)

/** Path of the kvorum-node entry point. */
export function nodeMainPath(): string {
  return nodePackageFile(() => require.resolve('kvorum-node/main'))
}

/** One node process started by this CLI. */
export interface LocalNode {
  readonly id: string
  readonly url: string
  readonly port: number
  readonly child: ChildProcess
  readonly exited: Promise<number | null>
}

export interface LocalClusterOptions {
  readonly nodes: number
  readonly basePort: number
  readonly dataDir: string
  readonly token?: string
  readonly durability?: 'normal' | 'full'
  /** Where node logs go. Default: inherited stderr is too noisy, so `ignore`. */
  readonly logs?: 'inherit' | 'ignore'
  /** Extra Node.js flags for each node process (profiling: `--cpu-prof --cpu-prof-dir=DIR`). */
  readonly nodeFlags?: readonly string[]
}

/** Start `nodes` kvorum-node processes on 127.0.0.1 and wait until each answers /health. */
export async function startNodes(opts: LocalClusterOptions): Promise<LocalNode[]> {
  const started: LocalNode[] = []
  try {
    for (let i = 0; i < opts.nodes; i++) {
      const id = `n${i + 1}`
      const port = opts.basePort + i
      const dir = resolve(join(opts.dataDir, id))
      mkdirSync(dir, { recursive: true })
      const args = [
        ...(opts.nodeFlags ?? []),
        nodeMainPath(),
        '--id',
        id,
        '--port',
        String(port),
        '--data',
        dir,
        '--durability',
        opts.durability ?? 'normal',
        '--log-level',
        'warn',
      ]
      if (opts.token) args.push('--token', opts.token)
      const child = spawn(process.execPath, args, { stdio: ['ignore', opts.logs ?? 'ignore', 'inherit'] })
      const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)))
      started.push({ id, port, url: `http://127.0.0.1:${port}`, child, exited })
    }
    await Promise.all(started.map((n) => waitHealthy(n)))
    return started
  } catch (e) {
    await stopNodes(started)
    throw e
  }
}

async function waitHealthy(node: LocalNode, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs
  let exitCode: number | null | undefined
  void node.exited.then((c) => (exitCode = c))
  while (Date.now() < until) {
    if (exitCode !== undefined) throw new Error(`node ${node.id} exited with code ${exitCode} before answering (is port ${node.port} free?)`)
    try {
      const res = await fetch(`${node.url}/health`, { signal: AbortSignal.timeout(1000) })
      if (res.ok) return
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`node ${node.id} did not answer ${node.url}/health within ${timeoutMs} ms`)
}

/** SIGTERM every node by PID and wait for it to exit (SIGKILL after `graceMs`). */
export async function stopNodes(nodes: readonly LocalNode[], graceMs = 8000): Promise<void> {
  await Promise.all(
    nodes.map(async (n) => {
      if (n.child.exitCode !== null || n.child.pid === undefined) return
      n.child.kill('SIGTERM')
      const timer = setTimeout(() => n.child.kill('SIGKILL'), graceMs)
      await n.exited
      clearTimeout(timer)
    }),
  )
}
