import { type Server, type Socket, createServer, connect } from 'node:net'

/**
 * What a proxy does to the traffic through it:
 * - `pass`: forward both ways;
 * - `blackhole`: accept connections but drop every byte both ways, as a
 *   network partition looks to TCP (requests hang until the caller's timeout);
 * - `delay`: deliver each chunk `ms` after it arrived, in order;
 * - `reset`: refuse with a TCP RST, and reset every open connection.
 */
export type ProxyMode =
  | { readonly kind: 'pass' }
  | { readonly kind: 'blackhole' }
  | { readonly kind: 'delay'; readonly ms: number }
  | { readonly kind: 'reset' }

export const PASS: ProxyMode = { kind: 'pass' }
export const BLACKHOLE: ProxyMode = { kind: 'blackhole' }
export const RESET: ProxyMode = { kind: 'reset' }

/** Counters of what a proxy did, for reports and for tests of the proxy itself. */
export interface ProxyStats {
  accepted: number
  refused: number
  bytesForwarded: number
  chunksDropped: number
}

/** One accepted connection and its upstream twin. */
interface Link {
  readonly client: Socket
  readonly upstream: Socket
  /** Bytes were dropped: the HTTP stream is broken, so the link must not carry traffic again. */
  tainted: boolean
}

/**
 * A TCP proxy on 127.0.0.1 in front of one node, whose mode can be switched
 * while traffic flows. Fault tests put one proxy per (client process, node)
 * pair, so a cut can be asymmetric: some clients see a node, others do not.
 */
export class FaultProxy {
  readonly stats: ProxyStats = { accepted: 0, refused: 0, bytesForwarded: 0, chunksDropped: 0 }
  private modeNow: ProxyMode = PASS
  private readonly links = new Set<Link>()

  private constructor(
    private readonly server: Server,
    /** The port the proxy listens on. */
    readonly port: number,
    /** The node's port on 127.0.0.1. */
    readonly targetPort: number,
  ) {
    server.on('connection', (socket) => this.accept(socket))
  }

  /** Listen on an OS-chosen port of 127.0.0.1 and forward to `targetPort`. */
  static async start(targetPort: number): Promise<FaultProxy> {
    if (!Number.isInteger(targetPort) || targetPort < 1 || targetPort > 65535) throw new Error(`assertion failed: bad target port ${targetPort}`)
    const server = createServer({ noDelay: true })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => resolve())
    })
    const address = server.address()
    if (address === null || typeof address === 'string') throw new Error('assertion failed: proxy has no TCP address')
    return new FaultProxy(server, address.port, targetPort)
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  get mode(): ProxyMode {
    return this.modeNow
  }

  /** Switch mode. Leaving a blackhole resets the connections that lost bytes, as their TCP peers would have given up. */
  setMode(mode: ProxyMode): void {
    if (mode.kind === 'delay' && !(Number.isFinite(mode.ms) && mode.ms >= 0)) throw new Error(`assertion failed: bad delay ${mode.ms}`)
    this.modeNow = mode
    for (const link of [...this.links]) {
      if (mode.kind === 'reset' || (mode.kind !== 'blackhole' && link.tainted)) this.drop(link, true)
    }
  }

  private accept(client: Socket): void {
    if (this.modeNow.kind === 'reset') {
      this.stats.refused++
      client.resetAndDestroy()
      return
    }
    this.stats.accepted++
    const upstream = connect({ host: '127.0.0.1', port: this.targetPort, noDelay: true })
    const link: Link = { client, upstream, tainted: false }
    this.links.add(link)
    // A node that is down refuses the upstream connection: the client then sees its connection close.
    client.on('error', () => this.drop(link, false))
    upstream.on('error', () => this.drop(link, false))
    client.on('close', () => this.drop(link, false))
    upstream.on('close', () => this.drop(link, false))
    this.forward(link, client, upstream)
    this.forward(link, upstream, client)
  }

  /** Copy one direction, applying the mode at the moment each chunk arrives; delayed chunks keep their order. */
  private forward(link: Link, from: Socket, to: Socket): void {
    let queue: Promise<void> = Promise.resolve()
    let queued = 0
    const write = (chunk: Buffer) => {
      if (to.destroyed) return
      this.stats.bytesForwarded += chunk.length
      to.write(chunk)
    }
    from.on('data', (chunk: Buffer) => {
      const mode = this.modeNow
      if (mode.kind === 'blackhole' || link.tainted) {
        link.tainted = true
        this.stats.chunksDropped++
        return
      }
      if (mode.kind === 'pass' && queued === 0) return write(chunk)
      const due = Date.now() + (mode.kind === 'delay' ? mode.ms : 0)
      queued++
      queue = queue
        .then(() => sleepUntil(due))
        .then(() => {
          queued--
          write(chunk)
        })
    })
    from.on('end', () => {
      void queue.then(() => to.end())
    })
  }

  private drop(link: Link, reset: boolean): void {
    if (!this.links.delete(link)) return
    if (reset && !link.client.destroyed) link.client.resetAndDestroy()
    else link.client.destroy()
    link.upstream.destroy()
  }

  /** Stop listening and close every connection. */
  async close(): Promise<void> {
    for (const link of [...this.links]) this.drop(link, false)
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

function sleepUntil(at: number): Promise<void> {
  const ms = at - Date.now()
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve()
}
