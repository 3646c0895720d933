import { Agent, type IncomingHttpHeaders, request } from 'node:http'

/** One request exactly as it goes on the wire: the path is sent byte for byte (latin1), unnormalised. */
export interface WireRequest {
  readonly method: string
  readonly path: string
  readonly headers: Readonly<Record<string, string | readonly string[]>>
  readonly body?: Uint8Array
  /** Send the body chunked, without a Content-Length. */
  readonly chunked?: true
}

export interface WireResponse {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
}

/** The node did not answer in time, or dropped the connection: a hang or a crash, never a refusal. */
export class NoAnswerError extends Error {
  constructor(
    readonly reason: 'timeout' | 'connection',
    message: string,
  ) {
    super(message)
  }
}

/** Largest response body read; anything larger is itself a finding (the fuzzer's store is small). */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024

/**
 * A keep-alive HTTP/1.1 client on 127.0.0.1 built on node:http, which (unlike
 * fetch) sends paths as given: `..`, `%zz` and raw high bytes reach the node.
 */
export class Client {
  private readonly agent: Agent

  /** maxSockets: connections kept open. timeoutMs: deadline of one whole request. */
  constructor(
    readonly port: number,
    maxSockets: number,
    readonly timeoutMs: number,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets })
  }

  /** Send once, and once more only when a reused keep-alive socket was closed under us (the node's idle timeout). */
  async send(req: WireRequest): Promise<WireResponse> {
    try {
      return await this.once(req)
    } catch (e) {
      if (e instanceof StaleSocketError) return this.once(req)
      throw e
    }
  }

  private once(req: WireRequest): Promise<WireResponse> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | string[]> = {}
      for (const [k, v] of Object.entries(req.headers)) headers[k] = typeof v === 'string' ? v : [...v]
      // node:http sends DELETE and OPTIONS bodies without a length, which the node would read as the
      // next request, and a bodiless POST without one; give every body, even an empty one, its length.
      if (req.chunked) headers['transfer-encoding'] = 'chunked'
      else if (req.body || ['POST', 'PUT', 'PATCH'].includes(req.method)) headers['content-length'] = String(req.body?.length ?? 0)
      const out = request({ host: '127.0.0.1', port: this.port, method: req.method, path: req.path, headers, agent: this.agent })
      const timer = setTimeout(() => {
        out.destroy(new NoAnswerError('timeout', `no answer within ${this.timeoutMs} ms`))
      }, this.timeoutMs)
      out.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer)
        if (e instanceof NoAnswerError) reject(e)
        else if (out.reusedSocket && (e.code === 'ECONNRESET' || e.code === 'EPIPE')) reject(new StaleSocketError())
        else reject(new NoAnswerError('connection', `${e.code ?? ''} ${e.message}`))
      })
      out.on('response', (res) => {
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (chunk: Buffer) => {
          size += chunk.length
          if (size > MAX_RESPONSE_BYTES) out.destroy(new NoAnswerError('connection', `response over ${MAX_RESPONSE_BYTES} bytes`))
          else chunks.push(chunk)
        })
        res.on('end', () => {
          clearTimeout(timer)
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) })
        })
        res.on('error', () => undefined)
      })
      const body = req.body ? Buffer.from(req.body.buffer, req.body.byteOffset, req.body.byteLength) : undefined
      // Two writes, so that a chunked body really goes as more than one chunk.
      if (req.chunked && body) out.write(body.subarray(0, body.length >> 1))
      out.end(req.chunked && body ? body.subarray(body.length >> 1) : body)
    })
  }

  close(): void {
    this.agent.destroy()
  }
}

class StaleSocketError extends Error {}
