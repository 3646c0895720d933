import { readFileSync } from 'node:fs'
import { type Server, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { getRequestListener } from '@hono/node-server'
import { ListenFailedError, PortInUseError } from '@kvorum/core'
import { Hono } from 'hono'
import type { Collector } from './collector.js'

/**
 * The page's files, read once at start. They sit in src/ (the package ships
 * it), which is the same place seen from src/dashboard and dist/dashboard.
 */
const ASSETS_DIR = new URL('../../src/dashboard/assets/', import.meta.url)
const ASSETS = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
} as const

/** The dashboard's HTTP face: the page, and the JSON it polls (`/api/state` every second, `/api/ring` when the version changes). */
export function dashboardApp(collector: Collector): Hono {
  const app = new Hono()
  for (const [path, asset] of Object.entries(ASSETS)) {
    const body = readFileSync(new URL(asset.file, ASSETS_DIR), 'utf8')
    app.get(path, (c) => c.body(body, 200, { 'content-type': asset.type, 'cache-control': 'no-cache' }))
  }
  const json = (value: unknown) =>
    value === null
      ? new Response('{"error":"the first poll has not finished"}', { status: 503, headers: { 'content-type': 'application/json' } })
      : Response.json(value)
  app.get('/api/state', () => json(collector.snapshot()))
  app.get('/api/ring', () => json(collector.ringView()))
  return app
}

/** Serve `app` on host:port (0: any free port); resolves its URL and a close. */
export function serve(app: Hono, host: string, port: number): Promise<{ url: string; server: Server }> {
  const server = createServer(getRequestListener(app.fetch))
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') reject(new PortInUseError(`port ${port} on ${host} is in use: stop what holds it, or pass another --port`))
      else reject(new ListenFailedError(`cannot listen on ${host}:${port}: ${e.message}`))
    })
    server.listen(port, host, () => {
      const address = server.address() as AddressInfo
      const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address
      resolve({ url: `http://${shown}:${address.port}`, server })
    })
  })
}
