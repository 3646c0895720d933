import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { makeTestCerts } from '../support/certs.js'
import { startNode, stopAllNodes } from '../support/node-process.js'
import { runCli } from './run-cli.js'

/** One node and a handful of CLI runs. */
const TEST_TIMEOUT_MS = 40_000
const certs = makeTestCerts()
const root = mkdtempSync(join(tmpdir(), 'kvorum-cli-access-'))
afterEach(stopAllNodes)
afterAll(() => {
  rmSync(root, { recursive: true, force: true })
  certs.remove()
})

function secretFile(name: string, secret: string): string {
  const file = join(root, name)
  writeFileSync(file, `${secret}\n`, { mode: 0o600 })
  return file
}

describe('the CLI over TLS with credentials of one job each', () => {
  it(
    'init with the admin credential, put and get with the data credential, each from a file, over https with --tls-ca; the wrong one is refused',
    async () => {
      const data = secretFile('data', 'cli-data-secret')
      const admin = secretFile('admin', 'cli-admin-secret')
      const node = await startNode({
        data: join(root, 'n1'),
        https: true,
        args: ['--tls-cert', certs.node.certFile, '--tls-key', certs.node.keyFile, '--tls-client-ca', certs.ca.certFile],
        env: { KVORUM_NODE_DATA_TOKEN_FILE: data, KVORUM_NODE_ADMIN_TOKEN_FILE: admin, KVORUM_NODE_METRICS_TOKEN: 'scrape' },
      })
      const tls = ['--tls-ca', certs.ca.certFile, '--tls-cert', certs.client.certFile, '--tls-key', certs.client.keyFile]
      const seeds = ['--seeds', node.url]
      const init = await runCli([
        'cluster',
        'init',
        '--nodes',
        node.url,
        '--store',
        'kv:n=1,r=1,w=1',
        '--token-file',
        data,
        '--admin-token-file',
        admin,
        ...tls,
      ])
      expect(init.stderr).toBe('')
      expect(init.code).toBe(0)
      const put = await runCli(['put', 'kv', 'k', 'secret value', ...seeds, '--token-file', data, ...tls])
      expect(put.code).toBe(0)
      // The TLS settings and the token from the environment this time.
      const env = { KVORUM_TOKEN_FILE: data, KVORUM_TLS_CA: certs.ca.certFile, KVORUM_TLS_CERT: certs.client.certFile, KVORUM_TLS_KEY: certs.client.keyFile }
      const get = await runCli(['get', 'kv', 'k', ...seeds], { env })
      expect(get.stdout).toMatch(/^secret value\n/)
      // The admin credential has no data job.
      const asAdmin = await runCli(['get', 'kv', 'k', ...seeds, '--token-file', admin, ...tls])
      expect(asAdmin.code).toBe(1)
      expect(asAdmin.stderr).toMatch(/KV_UNAUTHORIZED/)
      // No CA: the CLI says TLS and what to pass.
      const noCa = await runCli(['get', 'kv', 'k', ...seeds, '--token-file', data])
      expect(noCa.code).toBe(1)
      expect(noCa.stderr).toMatch(/TLS: the node's certificate is not signed by the CA given \(--tls-ca/)
      const twoTokens = await runCli(['get', 'kv', 'k', ...seeds, '--token-file', secretFile('two', 'a\nb'), ...tls])
      expect(twoTokens.code).toBe(2)
      expect(twoTokens.stderr).toMatch(/must hold one token/)
      // kvorum check goes through the same access plumbing: the client certificate, the CA and the admin credential.
      const checked = await runCli(['check', ...seeds, '--token-file', data, '--admin-token-file', admin, ...tls])
      expect(checked.stderr).toBe('')
      expect(checked.stdout).toMatch(/^n1 {2}quick_check ok, 1 rows checked, no damaged rows/m)
      expect(checked.code).toBe(0)
      // The client certificate and no CA.
      const checkNoCa = await runCli(['check', ...seeds, '--token-file', data, '--admin-token-file', admin, ...tls.slice(2)])
      expect(checkNoCa.code).toBe(1)
      expect(checkNoCa.stderr + checkNoCa.stdout).toMatch(/TLS: the node's certificate is not signed by the CA given \(--tls-ca/)
    },
    TEST_TIMEOUT_MS,
  )
})
