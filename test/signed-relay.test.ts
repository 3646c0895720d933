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

const ROLE_FLAGS = ['--data-token', 'app-secret', '--admin-token', 'admin-secret', '--metrics-token', 'scrape-secret']

async function twoNodes(): Promise<[NodeProcess, NodeProcess]> {
  return [await startNode({ data: freshDir(), id: 'n1', args: ROLE_FLAGS }), await startNode({ data: freshDir(), id: 'n2', args: ROLE_FLAGS })]
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
})
