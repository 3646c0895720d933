import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { HttpTransport, connect } from '@kvorum/client'
import { type ClusterDef, type NodeDef, initialAssignment, storeDef } from '@kvorum/core'
import { type NodeProcess, startNode, stopAllNodes } from './support/node-process.js'

/** Each case starts two nodes. */
const TEST_TIMEOUT_MS = 20_000
const root = mkdtempSync(join(tmpdir(), 'kvorum-relay-'))
let dirs = 0
const freshDir = () => join(root, `node-${dirs++}`)
afterEach(stopAllNodes)
afterAll(() => rmSync(root, { recursive: true, force: true }))

/** Short drains and grace: one node's loopback needs no more, and the test stays well inside its bound. */
const QUICK = { drainMs: 100, cleanupGraceMs: 100 }
const ROLE_FLAGS = ['--data-token', 'app-secret', '--admin-token', 'admin-secret', '--metrics-token', 'scrape-secret']

async function twoNodes(): Promise<[NodeProcess, NodeProcess]> {
  return [await startNode({ data: freshDir(), id: 'n1', args: ROLE_FLAGS }), await startNode({ data: freshDir(), id: 'n2', args: ROLE_FLAGS })]
}

/** Every node's definition version, read with the data credential. */
async function versionsOf(nodes: readonly NodeProcess[]): Promise<(number | null)[]> {
  const app = new HttpTransport({ token: 'app-secret' })
  try {
    return await Promise.all(nodes.map(async (n, i) => (await app.node({ id: `n${i + 1}`, url: n.url }).getCluster({ timeoutMs: 3000 }))?.version ?? null))
  } finally {
    await app.close()
  }
}

function definition(nodes: readonly NodeProcess[]): ClusterDef {
  const defs: NodeDef[] = nodes.map((n, i) => ({ id: `n${i + 1}`, url: n.url }))
  return { version: 1, partitions: 8, nodes: defs, assignment: initialAssignment(defs, 8), stores: [storeDef({ name: 'kv', n: 2, r: 1, w: 1 })] }
}

/** Install `def` on `node` with the transport given (admin, or data only). */
async function install(transport: HttpTransport, node: NodeProcess, id: string, def: ClusterDef): Promise<void> {
  await transport.node({ id, url: node.url }).putCluster({ timeoutMs: 3000 }, def)
}

describe('a data credential carries an admin-signed definition to a lagging node, and nothing else', () => {
  it(
    'the SDK with the admin credential signs what it writes; an application with only the data credential hands it to a wiped node',
    async () => {
      const [a, b] = await twoNodes()
      const admin = new HttpTransport({ token: 'app-secret', adminToken: 'admin-secret' })
      await install(admin, a, 'n1', definition([a, b]))
      await admin.close()
      const kv = await connect({ seeds: [a.url, b.url], token: 'app-secret' })
      try {
        const versions = await kv.clusterVersions()
        expect(versions.map((v) => v.version)).toEqual([1, 1])
      } finally {
        await kv.close()
      }
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'a definition written unsigned (by a client without the admin secret) stays where it is: the data credential cannot relay it',
    async () => {
      const [a, b] = await twoNodes()
      // The admin credential as a bearer token only: the definition is not signed.
      const unsigned = new HttpTransport({ token: 'admin-secret' })
      await install(unsigned, a, 'n1', definition([a, b]))
      await unsigned.close()
      const app = new HttpTransport({ token: 'app-secret' })
      try {
        const held = await app.node({ id: 'n1', url: a.url }).getCluster({ timeoutMs: 3000 })
        await expect(install(app, b, 'n2', held as ClusterDef)).rejects.toMatchObject({ code: 'KV_UNSIGNED_DEFINITION' })
        expect(await app.node({ id: 'n2', url: b.url }).getCluster({ timeoutMs: 3000 })).toBeNull()
      } finally {
        await app.close()
      }
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'a rebalance and a store change run with the admin credential (every stage signed); the same store change with only the data credential is refused and changes nothing',
    async () => {
      const [a, b] = await twoNodes()
      const c = await startNode({ data: freshDir(), id: 'n3', args: ROLE_FLAGS })
      const admin = new HttpTransport({ token: 'app-secret', adminToken: 'admin-secret' })
      for (const [node, id] of [
        [a, 'n1'],
        [b, 'n2'],
      ] as const)
        await install(admin, node, id, definition([a, b]))
      await admin.close()
      const operator = await connect({ seeds: [a.url], token: 'app-secret', adminToken: 'admin-secret' })
      const app = await connect({ seeds: [a.url], token: 'app-secret' })
      try {
        const store = app.store('kv', { codec: 'utf8' })
        for (let i = 0; i < 20; i++) await store.put(`k${i}`, `v${i}`)
        const grown = await operator.rebalance(operator.planChange({ add: [{ id: 'n3', url: c.url }] }), QUICK)
        expect(grown.nodes.map((n) => n.id)).toEqual(['n1', 'n2', 'n3'])
        const withStore = await operator.createStore({ name: 'carts', n: 2, r: 1, w: 1 }, QUICK)
        expect(await versionsOf([a, b, c])).toEqual([withStore.version, withStore.version, withStore.version])
        // Refused at once with its code: a credential that is refused does not wait out the install barrier.
        const started = Date.now()
        await expect(app.createStore({ name: 'forged', n: 1, r: 1, w: 1 }, QUICK)).rejects.toMatchObject({ code: 'KV_UNSIGNED_DEFINITION' })
        expect(Date.now() - started).toBeLessThan(5000)
        expect(await versionsOf([a, b, c])).toEqual([withStore.version, withStore.version, withStore.version])
        for (let i = 0; i < 20; i++) expect((await store.get(`k${i}`)).values).toEqual([`v${i}`])
      } finally {
        await app.close()
        await operator.close()
      }
    },
    TEST_TIMEOUT_MS,
  )
})
