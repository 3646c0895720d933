import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** The openssl binary the tests make their certificates with. */
const OPENSSL = '/usr/bin/openssl'
/** How long test certificates are valid, days. */
const VALID_DAYS = 2
/** Longest one openssl run may take, ms. */
const OPENSSL_TIMEOUT_MS = 10_000

/** A certificate and its key: PEM text, and the files holding them (for kvorum-node's flags). */
export interface Pem {
  readonly cert: string
  readonly key: string
  readonly certFile: string
  readonly keyFile: string
}

/** A test PKI made at run time: a CA, a node certificate for 127.0.0.1, a client certificate, and a CA that signed neither. */
export interface TestCerts {
  readonly ca: Pem
  readonly node: Pem
  readonly client: Pem
  /** A node certificate `ca` signed for 127.0.0.2: a client reaching it at 127.0.0.1 must refuse it (the name is verified). */
  readonly wrongName: Pem
  /** A second CA: trusting it instead of `ca` must fail. */
  readonly otherCa: Pem
  /** A client certificate signed by `otherCa`, which a node trusting `ca` must refuse. */
  readonly strangerClient: Pem
  readonly dir: string
  /** Remove the files. */
  remove(): void
}

function openssl(dir: string, args: readonly string[]): void {
  execFileSync(OPENSSL, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: OPENSSL_TIMEOUT_MS })
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

function read(dir: string, name: string): Pem {
  const certFile = join(dir, `${name}.pem`)
  const keyFile = join(dir, `${name}.key`)
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile }
}

function makeCa(dir: string, name: string): Pem {
  openssl(dir, [
    'req',
    '-x509',
    ...EC_KEY,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.pem`,
    '-subj',
    `/CN=${name}`,
    '-days',
    String(VALID_DAYS),
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ])
  return read(dir, name)
}

/** A leaf certificate `name`, signed by CA `ca`, with the given extensions (one a line). */
function makeLeaf(dir: string, name: string, ca: string, extensions: string): Pem {
  writeFileSync(join(dir, `${name}.ext`), `${extensions}\n`)
  openssl(dir, ['req', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`])
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-out',
    `${name}.pem`,
    '-days',
    String(VALID_DAYS),
    '-extfile',
    `${name}.ext`,
  ])
  return read(dir, name)
}

/** Make the test PKI in a fresh temporary directory (about 100 ms of openssl). */
export function makeTestCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'kvorum-certs-'))
  const ca = makeCa(dir, 'kvorum-test-ca')
  const otherCa = makeCa(dir, 'other-ca')
  const node = makeLeaf(dir, 'node', 'kvorum-test-ca', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE')
  const wrongName = makeLeaf(dir, 'wrong-name', 'kvorum-test-ca', 'subjectAltName=IP:127.0.0.2\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE')
  const client = makeLeaf(dir, 'client', 'kvorum-test-ca', 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE')
  const strangerClient = makeLeaf(dir, 'stranger', 'other-ca', 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE')
  return { ca, node, wrongName, client, otherCa, strangerClient, dir, remove: () => rmSync(dir, { recursive: true, force: true }) }
}

/** Another node certificate for 127.0.0.1 signed by the test CA, with its own key: what a certificate rotation installs. */
export function renewedNodeCert(certs: TestCerts, name: string): Pem {
  return makeLeaf(certs.dir, name, 'kvorum-test-ca', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE')
}
