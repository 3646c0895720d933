import { createHmac, timingSafeEqual } from 'node:crypto'
import type { ClusterDef } from './cluster.js'

/**
 * Cluster definitions signed with the admin secret, so that a data
 * credential can carry a definition to a lagging node without being able to
 * write one. An HMAC is enough here: every node already holds the admin
 * secret (it checks admin requests with it), so a public-key signature would
 * add key material to distribute without keeping the secret from anyone who
 * verifies. Applications hold only the data secret and cannot make one.
 */

const PREFIX = 'hmac-sha256:'

/** JSON of `value` with object keys sorted at every level: one byte string per definition, however it was built or parsed. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}

/** The bytes a signature covers: the canonical definition without its signature. */
function definitionBytes(def: ClusterDef): Buffer {
  const { signature: _signature, ...rest } = def
  return Buffer.from(canonical(rest), 'utf8')
}

/** True when `a` and `b` say the same, whatever their signatures and the order of their JSON keys. */
export function sameDefinition(a: ClusterDef, b: ClusterDef): boolean {
  return definitionBytes(a).equals(definitionBytes(b))
}

function mac(def: ClusterDef, secret: string): Buffer {
  return createHmac('sha256', secret).update(definitionBytes(def)).digest()
}

/** `def` with its signature made with the admin secret (any signature it carried is replaced). */
export function signCluster(def: ClusterDef, adminSecret: string): ClusterDef {
  const { signature: _old, ...rest } = def
  return { ...rest, signature: PREFIX + mac(rest, adminSecret).toString('hex') }
}

/** True when `def` carries a signature made with one of `adminSecrets`; every secret is tried, in constant time each. */
export function signedByAdmin(def: ClusterDef, adminSecrets: readonly string[]): boolean {
  const sig = def.signature
  if (sig === undefined || !sig.startsWith(PREFIX)) return false
  const presented = Buffer.from(sig.slice(PREFIX.length), 'hex')
  if (presented.length !== 32) return false
  let ok = false
  for (const secret of adminSecrets) ok = timingSafeEqual(presented, mac(def, secret)) || ok
  return ok
}
