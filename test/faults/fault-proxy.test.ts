import { type Server, type Socket, connect, createServer } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { BLACKHOLE, FaultProxy, PASS, RESET } from '../support/fault-proxy.js'

let server: Server | undefined
let proxy: FaultProxy | undefined
const sockets: Socket[] = []
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy()
  await proxy?.close()
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
  server = proxy = undefined
})

/** An echo server on 127.0.0.1 behind a fresh proxy. */
async function echo(): Promise<FaultProxy> {
  server = createServer((s) => s.pipe(s))
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no address')
  proxy = await FaultProxy.start(address.port)
  return proxy
}

function open(p: FaultProxy): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: p.port }, () => resolve(s))
    s.once('error', reject)
    sockets.push(s)
  })
}

/** Send `text`; resolve with what came back within `ms`, or null. */
function roundTrip(s: Socket, text: string, ms = 300): Promise<string | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      s.off('data', onData)
      resolve(null)
    }, ms)
    const onData = (b: Buffer) => {
      clearTimeout(timer)
      s.off('data', onData)
      resolve(b.toString())
    }
    s.on('data', onData)
    s.write(text)
  })
}

function closed(s: Socket): Promise<string> {
  return new Promise((resolve) => {
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message))
    s.once('close', () => resolve('closed'))
  })
}

describe('fault proxy', () => {
  it('passes bytes both ways', async () => {
    const p = await echo()
    expect(await roundTrip(await open(p), 'hello')).toBe('hello')
    expect(p.stats).toMatchObject({ accepted: 1, bytesForwarded: 10, chunksDropped: 0 })
  })

  it('delays each chunk by the set time, in order', async () => {
    const p = await echo()
    const s = await open(p)
    p.setMode({ kind: 'delay', ms: 150 })
    const started = Date.now()
    expect(await roundTrip(s, 'slow', 1000)).toBe('slow')
    // Both directions are delayed.
    expect(Date.now() - started).toBeGreaterThanOrEqual(290)
  })

  it('blackholes bytes, and on healing resets the connections that lost some while new ones pass', async () => {
    const p = await echo()
    const s = await open(p)
    p.setMode(BLACKHOLE)
    expect(await roundTrip(s, 'lost')).toBeNull()
    expect(p.stats.chunksDropped).toBeGreaterThan(0)
    const gone = closed(s)
    p.setMode(PASS)
    expect(await gone).toBe('ECONNRESET')
    expect(await roundTrip(await open(p), 'again')).toBe('again')
  })

  it('resets open connections and refuses new ones with a reset', async () => {
    const p = await echo()
    const s = await open(p)
    const gone = closed(s)
    p.setMode(RESET)
    expect(await gone).toBe('ECONNRESET')
    const late = await open(p).then(closed, (e: NodeJS.ErrnoException) => e.code)
    expect(['ECONNRESET', 'closed']).toContain(late)
    expect(p.stats.refused).toBe(1)
  })

  it('each proxy is switched on its own: one client cut, another not', async () => {
    const a = await echo()
    const address = server?.address()
    if (!address || typeof address === 'string') throw new Error('no address')
    const b = await FaultProxy.start(address.port)
    try {
      a.setMode(BLACKHOLE)
      expect(await roundTrip(await open(a), 'x')).toBeNull()
      expect(await roundTrip(await open(b), 'y')).toBe('y')
    } finally {
      await b.close()
    }
  })
})
