import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { HttpTransport, type TlsOptions, connect } from '@kvorum/client'
import { type ClusterDef, type NodeDef, initialAssignment, storeDef } from '@kvorum/core'
import { makeTestCerts } from './support/certs.js'
import { type NodeProcess, startNode, stopAllNodes } from './support/node-process.js'

/** Each case starts one node. */
const TEST_TIMEOUT_MS = 20_000
const TOKEN = 'tls-test-token'
const certs = makeTestCerts()
const root = mkdtempSync(join(tmpdir(), 'kvorum-tls-'))
let dirs = 0
const freshDir = () => join(root, `node-${dirs++}`)
afterEach(stopAllNodes)
afterAll(() => {
  rmSync(root, { recursive: true, force: true })
  certs.remove()
})

const serverFlags = ['--tls-cert', certs.node.certFile, '--tls-key', certs.node.keyFile]

function tlsNode(extra: readonly string[] = []): Promise<NodeProcess> {
  return startNode({ data: freshDir(), token: TOKEN, https: true, args: [...serverFlags, ...extra] })
}

const definition = (node: NodeProcess): ClusterDef => {
  const nodes: NodeDef[] = [{ id: 'n1', url: node.url }]
  return { version: 1, partitions: 8, nodes, assignment: initialAssignment(nodes, 8), stores: [storeDef({ name: 'kv', n: 1, r: 1, w: 1 })] }
}

/** One /health call through a fresh transport: what a client with these TLS settings meets. */
async function health(url: string, tls?: TlsOptions) {
  const transport = new HttpTransport({ token: TOKEN, ...(tls ? { tls } : {}) })
  try {
    return await transport.node({ id: 'n1', url }).health({ timeoutMs: 3000 })
  } finally {
    await transport.close()
  }
}

describe('TLS between the SDK and the nodes (certificates made at run time with openssl)', () => {
  it(
    'round trip over HTTPS: the cluster installed, a value written and read back by connect() over https:// seeds',
    async () => {
      const node = await tlsNode()
      expect(node.url).toMatch(/^https:\/\/127\.0\.0\.1:/)
      const tls = { ca: certs.ca.cert }
      const transport = new HttpTransport({ token: TOKEN, tls })
      await transport.node({ id: 'n1', url: node.url }).putCluster({ timeoutMs: 3000 }, definition(node))
      await transport.close()
      const kv = await connect({ seeds: [node.url], token: TOKEN, tls })
      try {
        const store = kv.store('kv', { codec: 'utf8' })
        await store.put('over', 'tls')
        expect((await store.get('over')).values).toEqual(['tls'])
      } finally {
        await kv.close()
      }
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'a wrong CA is refused, naming TLS and the CA; so is no CA at all (the test CA is not a public one)',
    async () => {
      const node = await tlsNode()
      await expect(health(node.url, { ca: certs.otherCa.cert })).rejects.toMatchObject({
        code: 'KV_NODE_UNAVAILABLE',
        message: expect.stringMatching(/TLS: the node's certificate is not signed by the CA given/),
      })
      await expect(health(node.url)).rejects.toMatchObject({ message: expect.stringMatching(/TLS: the node's certificate is not signed/) })
    },
    TEST_TIMEOUT_MS,
  )

  it(
    "the node's name is verified: a certificate for another address is refused",
    async () => {
      const node = await startNode({
        data: freshDir(),
        token: TOKEN,
        https: true,
        args: ['--tls-cert', certs.wrongName.certFile, '--tls-key', certs.wrongName.keyFile],
      })
      await expect(health(node.url, { ca: certs.ca.cert })).rejects.toMatchObject({
        message: expect.stringMatching(/TLS: the node's certificate does not name the host or IP of its URL/),
      })
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'with --tls-client-ca, a client without a certificate (or with one another CA signed) is refused; one the CA signed gets in',
    async () => {
      const node = await tlsNode(['--tls-client-ca', certs.ca.certFile])
      const refused = (why: RegExp) => ({ code: 'KV_UNAUTHORIZED', message: expect.stringMatching(why) })
      await expect(health(node.url, { ca: certs.ca.cert })).rejects.toMatchObject(
        refused(/TLS: no client certificate was presented: this node requires a client certificate its --tls-client-ca signed/),
      )
      await expect(health(node.url, { ca: certs.ca.cert, cert: certs.strangerClient.cert, key: certs.strangerClient.key })).rejects.toMatchObject(
        refused(/TLS: the client certificate is not signed by this node's CA/),
      )
      expect(await health(node.url, { ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key })).toMatchObject({ id: 'n1' })
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'plain HTTP to a TLS node is answered KV_TLS_REQUIRED, and HTTPS to a plain node says it does not serve TLS',
    async () => {
      const node = await tlsNode()
      await expect(health(node.url.replace('https:', 'http:'))).rejects.toMatchObject({
        code: 'KV_TLS_REQUIRED',
        message: expect.stringMatching(/this node serves HTTPS only: use an https:\/\/ URL/),
      })
      // The node still serves TLS after the plain caller.
      expect(await health(node.url, { ca: certs.ca.cert })).toMatchObject({ id: 'n1' })
      const plain = await startNode({ data: freshDir(), token: TOKEN })
      await expect(health(plain.url.replace('http:', 'https:'), { ca: certs.ca.cert })).rejects.toMatchObject({
        message: expect.stringMatching(/TLS: the node does not serve TLS \(use an http:\/\/ URL\)/),
      })
    },
    TEST_TIMEOUT_MS,
  )
})
