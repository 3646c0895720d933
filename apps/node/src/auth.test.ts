import { Writable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { StorageEngine } from '@kvorum/storage'
import { createApp } from './app.js'
import { nodeLogger } from './logger.js'

const engines: StorageEngine[] = []
afterEach(() => {
  for (const e of engines.splice(0)) e.close()
})

/** An app whose log lines are kept, parsed. */
function appWithLog(options: { token?: string; metricsToken?: string }) {
  const lines: Record<string, unknown>[] = []
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
  const engine = new StorageEngine({ path: ':memory:', nodeId: 'n1' })
  engines.push(engine)
  const app = createApp({ engine, logger: nodeLogger('info', 'n1', sink), ...options })
  return { app, lines }
}

describe('node app: authentication failures in the log', () => {
  it('are bounded: 10 warn lines a second, and the next line logged counts the ones left out', async () => {
    const { app, lines } = appWithLog({ token: 'right' })
    for (let i = 0; i < 15; i++) expect((await app.request('/v1/cluster', { headers: { authorization: `Bearer wrong-${i}` } })).status).toBe(401)
    const warned = () => lines.filter((l) => l.msg === 'authentication failed')
    expect(warned()).toHaveLength(10)
    await new Promise((resolve) => setTimeout(resolve, 1100))
    expect((await app.request('/v1/hints')).status).toBe(401)
    expect(warned()).toHaveLength(11)
    expect(warned()[10]).toMatchObject({ level: 'warn', reason: 'no bearer token', suppressed: 5, remote: 'in-process', path: '/v1/hints' })
    expect(JSON.stringify(lines)).not.toMatch(/wrong-\d/)
  })

  it('name a metrics credential used on a data route, which is refused even when it is long or odd', async () => {
    const { app, lines } = appWithLog({ token: 'data', metricsToken: 'scrape' })
    expect((await app.request('/v1/cluster', { headers: { authorization: 'Bearer scrape' } })).status).toBe(401)
    expect((await app.request('/v1/cluster', { headers: { authorization: `Bearer ${'x'.repeat(5000)}` } })).status).toBe(401)
    expect((await app.request('/v1/cluster', { headers: { authorization: 'Basic ZGF0YQ==' } })).status).toBe(401)
    expect((await app.request('/metrics', { headers: { authorization: 'Bearer scrape' } })).status).toBe(200)
    expect(lines.filter((l) => l.msg === 'authentication failed').map((l) => l.reason)).toEqual([
      'a metrics credential on a data route',
      'wrong token',
      'no bearer token',
    ])
  })
})
