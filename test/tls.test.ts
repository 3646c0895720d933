import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import { X509Certificate } from 'node:crypto'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { HttpTransport, type TlsOptions, connect } from '@kvorum/client'
import { type ClusterDef, type NodeDef, initialAssignment, storeDef } from '@kvorum/core'
import { makeTestCerts, renewedNodeCert } from './support/certs.js'
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

/** Longest wait for a line in a node's log, ms. */
const LOG_WAIT_MS = 10_000

async function waitForLog(node: NodeProcess, text: string, count: number): Promise<void> {
  const deadline = Date.now() + LOG_WAIT_MS
  while (node.output().split(text).length - 1 < count) {
    if (Date.now() > deadline) throw new Error(`no "${text}" (x${count}) in the node's log within ${LOG_WAIT_MS} ms:\n${node.output()}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** The SHA-256 fingerprint of the certificate a new connection to `url` is shown (verified against the test CA). */
function servedFingerprint(url: string): Promise<string> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: hostname, port: Number(port), ca: certs.ca.cert, timeout: 5000 }, () => {
      resolve(socket.getPeerCertificate().fingerprint256)
      socket.end()
    })
    socket.once('error', reject)
    socket.once('timeout', () => socket.destroy(new Error(`no TLS handshake with ${url} within 5 s`)))
  })
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

  it(
    'SIGHUP reloads the certificate and key: new connections get the new one, same process; a broken pair keeps the old one serving',
    async () => {
      // The node reads its certificate from files an operator (or cert-manager) replaces in place.
      const dir = freshDir()
      mkdirSync(dir, { recursive: true })
      const certFile = join(dir, 'served.pem')
      const keyFile = join(dir, 'served.key')
      copyFileSync(certs.node.certFile, certFile)
      copyFileSync(certs.node.keyFile, keyFile)
      const node = await startNode({
        data: join(dir, 'db'),
        token: TOKEN,
        https: true,
        args: ['--tls-cert', certFile, '--tls-key', keyFile, '--log-level', 'info'],
      })
      const fingerprintOf = (pem: string) => new X509Certificate(pem).fingerprint256
      expect(await servedFingerprint(node.url)).toBe(fingerprintOf(certs.node.cert))
      const transport = new HttpTransport({ token: TOKEN, tls: { ca: certs.ca.cert } })
      try {
        const client = transport.node({ id: 'n1', url: node.url })
        expect(await client.health({ timeoutMs: 3000 })).toMatchObject({ id: 'n1' })

        const renewed = renewedNodeCert(certs, 'renewed')
        copyFileSync(renewed.certFile, certFile)
        copyFileSync(renewed.keyFile, keyFile)
        process.kill(node.pid, 'SIGHUP')
        await waitForLog(node, 'TLS certificate reloaded', 1)
        expect(await servedFingerprint(node.url)).toBe(fingerprintOf(renewed.cert))
        // The client's kept connection and a new client both go on working: no restart, no refusal.
        expect(await client.health({ timeoutMs: 3000 })).toMatchObject({ id: 'n1' })
        expect(await health(node.url, { ca: certs.ca.cert })).toMatchObject({ id: 'n1' })

        // A key that is not the certificate's: the node says so and keeps serving the renewed pair.
        copyFileSync(certs.client.keyFile, keyFile)
        process.kill(node.pid, 'SIGHUP')
        await waitForLog(node, 'TLS certificate not reloaded: the node keeps serving the old one', 1)
        expect(node.output()).toMatch(/"code":"KV_USAGE","err":"the TLS certificate, key and client CA files do not go together \(.*key values mismatch\)"/)
        expect(await servedFingerprint(node.url)).toBe(fingerprintOf(renewed.cert))
        expect(await health(node.url, { ca: certs.ca.cert })).toMatchObject({ id: 'n1' })
      } finally {
        await transport.close()
      }
      expect(node.output()).not.toMatch(/kvorum-node listening[\s\S]*kvorum-node listening/)
    },
    TEST_TIMEOUT_MS,
  )
})
