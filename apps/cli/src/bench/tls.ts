import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { UsageError } from '../args.js'
import type { LocalTls } from '../local-cluster.js'

/** The openssl binary `kvorum bench --tls` makes its throwaway certificates with. */
const OPENSSL = 'openssl'
/** Longest one openssl run may take, ms. */
const OPENSSL_TIMEOUT_MS = 10_000
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

function openssl(dir: string, args: readonly string[]): void {
  try {
    execFileSync(OPENSSL, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: OPENSSL_TIMEOUT_MS })
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    throw new UsageError(
      code === 'ENOENT' ? 'kvorum bench --tls needs the openssl binary on PATH' : `openssl ${args[0]} failed: ${(e as Error).message.split('\n')[0]}`,
    )
  }
}

/**
 * A throwaway CA and a certificate for 127.0.0.1 in `dir`, for a bench
 * cluster that serves HTTPS: the cost of TLS measured on the same workload.
 * The nodes use one-day certificates, EC P-256 (what a deployment would pick).
 */
export function benchTls(dir: string): LocalTls {
  openssl(dir, ['req', '-x509', ...EC_KEY, '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=kvorum-bench-ca', '-days', '1'])
  writeFileSync(join(dir, 'node.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n')
  openssl(dir, ['req', ...EC_KEY, '-keyout', 'node.key', '-out', 'node.csr', '-subj', '/CN=127.0.0.1'])
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    'node.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'node.pem',
    '-days',
    '1',
    '-extfile',
    'node.ext',
  ])
  return { certFile: join(dir, 'node.pem'), keyFile: join(dir, 'node.key'), ca: readFileSync(join(dir, 'ca.pem'), 'utf8') }
}
