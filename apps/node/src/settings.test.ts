import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { type NodeDef, initialAssignment, storeDef } from '@kvorum/core'
import { type NodeProcess, startNode, stopAllNodes } from '../../../test/support/node-process.js'

/** Each case starts one node; this bounds it even without the repository's vitest config. */
const TEST_TIMEOUT_MS = 20_000
/** Longest wait for a log line, ms. */
const LOG_WAIT_MS = 5000
const root = mkdtempSync(join(tmpdir(), 'kvorum-settings-'))
let files = 0
const fresh = (name: string) => join(root, `${files++}-${name}`)
afterEach(stopAllNodes)
afterAll(() => rmSync(root, { recursive: true, force: true }))

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const nodes: NodeDef[] = [{ id: 'n1', url: 'http://127.0.0.1:7001' }]
const CLUSTER = { version: 1, partitions: 8, nodes, assignment: initialAssignment(nodes, 8), stores: [storeDef({ name: 'kv', n: 1, r: 1, w: 1 })] }

function secretFile(name: string, ...secrets: string[]): string {
  const file = fresh(name)
  writeFileSync(file, `${secrets.join('\n')}\n`, { mode: 0o600 })
  return file
}

/** The node's argv as the kernel shows it to every user of the machine. */
const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ')

async function waitForLog(node: NodeProcess, text: string, count: number): Promise<void> {
  const deadline = Date.now() + LOG_WAIT_MS
  while (node.output().split(text).length - 1 < count) {
    if (Date.now() > deadline) throw new Error(`no "${text}" (x${count}) in the node's log within ${LOG_WAIT_MS} ms:\n${node.output()}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe('kvorum-node settings from the environment and a config file, secrets off argv', () => {
  it(
    'a config file sets the settings and every credential; a KVORUM_NODE_ variable beats the file and a flag beats both; no secret is on argv',
    async () => {
      const config = fresh('node.json')
      writeFileSync(
        config,
        JSON.stringify({
          id: 'from-file',
          zone: 'from-file',
          'max-hints': 7,
          'data-token-file': secretFile('data', 'd-secret'),
          'admin-token': 'a-secret',
          'metrics-token': ['m-old', 'm-new'],
        }),
      )
      const node = await startNode({ data: fresh('data'), args: ['--config', config], env: { KVORUM_NODE_ID: 'from-env', KVORUM_NODE_ZONE: 'from-env' } })
      // startNode passes --id n1 itself: the flag wins over the variable; the zone's variable wins over the file.
      const health = (await (await fetch(`${node.url}/health`)).json()) as { id: string; zone: string }
      expect(health).toMatchObject({ id: 'n1', zone: 'from-env' })
      const put = (token: string) =>
        fetch(`${node.url}/v1/cluster`, { method: 'PUT', headers: { 'content-type': 'application/json', ...bearer(token) }, body: JSON.stringify(CLUSTER) })
      expect((await put('d-secret')).status).toBe(403)
      expect((await put('a-secret')).status).toBe(200)
      expect((await fetch(`${node.url}/v1/cluster`, { headers: bearer('d-secret') })).status).toBe(200)
      for (const scrape of ['m-old', 'm-new']) expect((await fetch(`${node.url}/metrics`, { headers: bearer(scrape) })).status).toBe(200)
      expect(cmdline(node.pid)).not.toMatch(/secret|m-old|m-new/)
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'KVORUM_NODE_ variables set any flag: the id from one, and the credentials from token-file variables',
    async () => {
      const node = await startNode({
        data: fresh('data'),
        args: [],
        env: {
          KVORUM_NODE_ZONE: 'env-zone',
          KVORUM_NODE_DATA_TOKEN_FILE: secretFile('data', 'd1'),
          KVORUM_NODE_ADMIN_TOKEN_FILE: secretFile('admin', 'a1'),
          KVORUM_NODE_METRICS_TOKEN: 'm1',
        },
      })
      expect(((await (await fetch(`${node.url}/health`)).json()) as { zone: string }).zone).toBe('env-zone')
      expect((await fetch(`${node.url}/metrics`, { headers: bearer('m1') })).status).toBe(200)
      expect((await fetch(`${node.url}/metrics`, { headers: bearer('d1') })).status).toBe(401)
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'a rotation: both secrets accepted while it runs, SIGHUP re-reads the files, and no request fails',
    async () => {
      const dataFile = secretFile('data', 'data-old')
      const node = await startNode({
        data: fresh('data'),
        args: [
          '--data-token-file',
          dataFile,
          '--admin-token-file',
          secretFile('admin', 'admin-1'),
          '--metrics-token-file',
          secretFile('m', 'm1'),
          '--log-level',
          'info',
        ],
      })
      const put = await fetch(`${node.url}/v1/cluster`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', ...bearer('admin-1') },
        body: JSON.stringify(CLUSTER),
      })
      expect(put.status).toBe(200)
      // An application reads without pause all through the rotation, switching to the new secret half way.
      let token = 'data-old'
      let running = true
      const statuses = new Map<number, number>()
      const reader = (async () => {
        while (running) {
          const res = await fetch(`${node.url}/v1/cluster`, { headers: bearer(token) })
          await res.arrayBuffer()
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
        }
      })()
      const hangup = async (count: number) => {
        process.kill(node.pid, 'SIGHUP')
        await waitForLog(node, 'credentials reloaded', count)
      }
      writeFileSync(dataFile, 'data-old\ndata-new\n')
      await hangup(1)
      token = 'data-new'
      await new Promise((resolve) => setTimeout(resolve, 100))
      writeFileSync(dataFile, 'data-new\n')
      await hangup(2)
      await new Promise((resolve) => setTimeout(resolve, 100))
      running = false
      await reader
      expect([...statuses.keys()]).toEqual([200])
      expect(statuses.get(200)).toBeGreaterThan(10)
      expect((await fetch(`${node.url}/v1/cluster`, { headers: bearer('data-old') })).status).toBe(401)
      // A mistake in the files keeps the secrets the node holds.
      writeFileSync(dataFile, 'one\ntwo\nthree\n')
      process.kill(node.pid, 'SIGHUP')
      await waitForLog(node, 'credentials not reloaded', 1)
      expect((await fetch(`${node.url}/v1/cluster`, { headers: bearer('data-new') })).status).toBe(200)
    },
    TEST_TIMEOUT_MS,
  )
})
