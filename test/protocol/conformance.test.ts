import { pino } from 'pino'
import { type NodeDef, type NodeProtocol, ROUTES } from '@kvorum/core'
import { HttpTransport, type NodeClient } from '@kvorum/client'
import { MemoryTransport } from '@kvorum/client/testing'
import type { StorageEngine } from '@kvorum/storage'
import { createApp } from 'kvorum-node'
import { protocolSuite } from './conformance.case.js'

const NODE: NodeDef = { id: 'n1', url: 'http://n1.test' }
const OPTS = { timeoutMs: 5000 }

/** A transport's client for one node as a NodeProtocol: every call with the same request options. */
function withOptions(client: NodeClient): NodeProtocol {
  return Object.fromEntries(
    Object.keys(ROUTES).map((op) => [op, (...args: unknown[]) => (client[op as keyof NodeClient] as (...a: unknown[]) => unknown)(OPTS, ...args)]),
  ) as unknown as NodeProtocol
}

protocolSuite('the storage engine in-process', (engine) => engine)

protocolSuite('the in-memory transport over an engine', (engine) => withOptions(new MemoryTransport(new Map([['n1', engine]])).node(NODE)))

/** The SDK's HTTP transport, its requests served by the node app in-process: the HTTP face's codecs and status mapping, without sockets. */
function overHttp(engine: StorageEngine): NodeProtocol {
  const app = createApp({ engine, logger: pino({ level: 'silent' }) })
  const transport = new HttpTransport({
    exchange: async (_def, req) => {
      const init: RequestInit = req.body
        ? { method: req.method, headers: req.headers, body: req.body as Uint8Array<ArrayBuffer> }
        : { method: req.method, headers: req.headers }
      const res = await app.request(req.path, init)
      const body = new Uint8Array(await res.arrayBuffer())
      const version = res.headers.get('x-kvorum-cluster-version')
      return version === null ? { status: res.status, body } : { status: res.status, clusterVersion: version, body }
    },
  })
  return withOptions(transport.node(NODE))
}

protocolSuite('the HTTP transport over the node app', overHttp)
