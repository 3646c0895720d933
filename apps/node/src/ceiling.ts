#!/usr/bin/env node
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { randomBytes } from 'node:crypto'
import Database from 'better-sqlite3'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { noopNode } from './noop-node.js'

/**
 * What this machine can do without Kvorum, for `kvorum bench` to compare
 * against in the same run:
 *   ceiling.js noop-server            a Hono server whose routes do nothing (HTTP ceiling)
 *   ceiling.js sqlite --durability D  raw better-sqlite3 upserts and point reads, one row per transaction
 *   ceiling.js noop-node --data DIR   the node's app whose store batches do no work (batch ceiling)
 */

function noopServer(): void {
  const app = new Hono()
  app.get('/noop', (c) => c.body(null, 200))
  app.post('/noop', async (c) => {
    await c.req.arrayBuffer()
    return c.body(null, 200)
  })
  serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => {
    process.send?.({ ready: true, port: info.port })
  })
  process.on('SIGTERM', () => process.exit(0))
  process.on('disconnect', () => process.exit(0))
}

function sqlite(durability: string, seconds: number, valueBytes: number, rows: number): void {
  const dir = mkdtempSync(join(tmpdir(), 'kvorum-ceiling-'))
  try {
    const db = new Database(join(dir, 'ceiling.db'))
    db.pragma('journal_mode = WAL')
    db.pragma(`synchronous = ${durability === 'full' ? 'FULL' : 'NORMAL'}`)
    db.exec('CREATE TABLE kv (id INTEGER PRIMARY KEY, key BLOB NOT NULL, data BLOB NOT NULL); CREATE UNIQUE INDEX kv_key ON kv (key)')
    const upsert = db.prepare('INSERT INTO kv (key, data) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET data = excluded.data')
    const select = db.prepare('SELECT data FROM kv WHERE key = ?')
    const key = (i: number) => Buffer.from(`user${String(i).padStart(12, '0')}`)
    // Vary the bytes: SQLite skips pages rewritten with identical content.
    const value = () => randomBytes(valueBytes)
    const load = db.transaction(() => {
      for (let i = 0; i < rows; i++) upsert.run(key(i), value())
    })
    load()
    const measure = (op: () => void) => {
      const until = performance.now() + (seconds * 1000) / 2
      let n = 0
      while (performance.now() < until) {
        for (let i = 0; i < 100; i++) op()
        n += 100
      }
      return n / (seconds / 2)
    }
    const one = db.transaction((i: number) => upsert.run(key(i), value()))
    const upsertsPerSec = measure(() => one(Math.floor(Math.random() * rows)))
    const readsPerSec = measure(() => select.get(key(Math.floor(Math.random() * rows))))
    db.close()
    process.stdout.write(`${JSON.stringify({ upsertsPerSec, readsPerSec })}\n`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const [mode, ...rest] = process.argv.slice(2)
const { values } = parseArgs({
  args: rest,
  options: {
    durability: { type: 'string', default: 'normal' },
    seconds: { type: 'string', default: '2' },
    'value-size': { type: 'string', default: '512' },
    rows: { type: 'string', default: '10000' },
    data: { type: 'string' },
  },
})
if (mode === 'noop-server') noopServer()
else if (mode === 'noop-node' && values.data) void noopNode(values.data, Number(values['value-size'])).then(({ port }) => process.send?.({ ready: true, port }))
else if (mode === 'sqlite') sqlite(values.durability as string, Number(values.seconds), Number(values['value-size']), Number(values.rows))
else {
  console.error(
    'usage: ceiling.js noop-server | noop-node --data DIR [--value-size 512] | sqlite [--durability normal|full] [--seconds 2] [--value-size 512] [--rows 10000]',
  )
  process.exit(2)
}
