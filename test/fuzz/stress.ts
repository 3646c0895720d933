import { connect, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { LIMITS, encodeKeys, utf8 } from '@kvorum/core'
import type { Client } from './http.js'
import { TOKEN } from './target.js'

/** A raw answer read off a socket: status line, headers and body (chunked bodies decoded). */
interface RawAnswer {
  readonly status: number
  readonly body: string
}

function parseAnswer(raw: Buffer): RawAnswer | null {
  const end = raw.indexOf('\r\n\r\n')
  if (end < 0) return null
  const head = raw.subarray(0, end).toString('latin1')
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0)
  let body = raw.subarray(end + 4)
  if (/\r\ntransfer-encoding: chunked/i.test(head)) {
    const parts: Buffer[] = []
    for (let at = 0; at < body.length; ) {
      const eol = body.indexOf('\r\n', at)
      const size = parseInt(body.subarray(at, eol).toString(), 16)
      if (!(size > 0)) break
      parts.push(body.subarray(eol + 2, eol + 2 + size))
      at = eol + 4 + size
    }
    body = Buffer.concat(parts)
  }
  return { status, body: body.toString('utf8') }
}

function head(port: number, path: string, framing: string): string {
  return `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/octet-stream\r\n${framing}Connection: close\r\n\r\n`
}

/** Collect what the node sends on `socket` until it closes it or `timeoutMs` passes. */
function collect(socket: Socket, timeoutMs: number): { answer: Promise<Buffer>; answered: () => boolean } {
  const chunks: Buffer[] = []
  let got = false
  const answer = new Promise<Buffer>((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy()
      resolve(Buffer.concat(chunks))
    }, timeoutMs)
    socket.on('data', (c: Buffer) => {
      got = true
      chunks.push(c)
    })
    socket.on('error', () => undefined)
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(Buffer.concat(chunks))
    })
  })
  return { answer, answered: () => got }
}

function opened(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => resolve(socket))
    socket.once('error', reject)
  })
}

/**
 * Send a body over the 64 MiB frame limit, declared by Content-Length or
 * streamed chunked; the node must answer 413 KV_PAYLOAD_TOO_LARGE. Returns problems.
 */
export async function oversize(port: number, chunked: boolean): Promise<string[]> {
  const socket = await opened(port)
  const { answer, answered } = collect(socket, 30_000)
  const total = LIMITS.maxFrameBytes + 1024 * 1024
  socket.write(head(port, '/v1/stores/kv/batch', chunked ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${total}\r\n`))
  // A node that refuses on the headers alone answers at once; when it then closes the socket
  // with our body unread, the reset would discard its answer before we read it.
  for (let waited = 0; waited < 500 && !answered(); waited += 20) await sleep(20)
  const chunk = Buffer.alloc(1024 * 1024, 0x41)
  for (let sent = 0; sent < total && !answered() && !socket.destroyed; sent += chunk.length) {
    const ok = chunked ? socket.write(`${chunk.length.toString(16)}\r\n`) && socket.write(chunk) && socket.write('\r\n') : socket.write(chunk)
    if (!ok)
      await new Promise<void>((resolve) => {
        socket.once('drain', resolve)
        socket.once('close', resolve)
      })
  }
  if (chunked && !socket.destroyed) socket.write('0\r\n\r\n')
  const parsed = parseAnswer(await answer)
  socket.destroy()
  const what = `oversized ${chunked ? 'chunked' : 'Content-Length'} body`
  if (!parsed) return [`${what}: no answer`]
  // A node that takes no chunked bodies refuses this one on its headers, as 411.
  const [status, code] = chunked && parsed.status === 411 ? [411, 'KV_LENGTH_REQUIRED'] : [413, 'KV_PAYLOAD_TOO_LARGE']
  if (parsed.status !== status) return [`${what}: answered ${parsed.status}, not ${status}: ${parsed.body.slice(0, 160)}`]
  try {
    const body = JSON.parse(parsed.body) as { code?: string }
    return body.code === code ? [] : [`${what}: code ${String(body.code)}, not ${code}`]
  } catch {
    return [`${what}: 413 answer is not JSON: ${parsed.body.slice(0, 120)}`]
  }
}

/**
 * Slowloris, bounded: `sockets` connections drip a body (or headers) a few
 * bytes at a time for `durationMs`, while /health must keep answering within
 * a second. Then half finish their request (and must get a 200) and the rest
 * hang up mid-request. Returns problems.
 */
export async function slowloris(port: number, client: Client, sockets: number, durationMs: number): Promise<string[]> {
  const problems: string[] = []
  const frame = Buffer.from(encodeKeys([utf8('seed-00'), utf8('slow')]))
  const conns = await Promise.all(
    Array.from({ length: sockets }, async (_, i) => {
      const socket = await opened(port)
      const reading = collect(socket, durationMs + 15_000)
      const request = head(port, '/v1/stores/kv/get', `Content-Length: ${frame.length}\r\n`)
      // Every fourth drips its headers; the others send headers and drip the body.
      const slowHeaders = i % 4 === 0
      const whole = slowHeaders ? Buffer.concat([Buffer.from(request), frame]) : frame
      if (!slowHeaders) socket.write(request)
      return { socket, reading, whole, sent: 0, finish: i % 2 === 1 }
    }),
  )
  const deadline = Date.now() + durationMs
  while (Date.now() < deadline) {
    for (const c of conns) {
      // Keep the last byte back so no request completes early.
      if (c.sent < c.whole.length - 1) c.socket.write(c.whole.subarray(c.sent, ++c.sent))
    }
    const started = Date.now()
    try {
      const res = await client.send({ method: 'GET', path: '/health', headers: {} })
      if (res.status !== 200) problems.push(`/health answered ${res.status} under slowloris`)
    } catch (e) {
      problems.push(`/health did not answer under slowloris: ${(e as Error).message}`)
    }
    if (Date.now() - started > 1000) problems.push(`/health took ${Date.now() - started} ms under slowloris`)
    await sleep(100)
  }
  for (const c of conns) {
    if (c.finish) c.socket.write(c.whole.subarray(c.sent))
    else c.socket.destroy()
  }
  for (const c of conns.filter((x) => x.finish)) {
    const parsed = parseAnswer(await c.reading.answer)
    if (parsed?.status !== 200) problems.push(`a slow request that finished got ${parsed ? parsed.status : 'no answer'}: ${parsed?.body.slice(0, 120) ?? ''}`)
    c.socket.destroy()
  }
  return problems
}
