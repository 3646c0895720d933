import { createHash, timingSafeEqual } from 'node:crypto'
import type { Role } from '@kvorum/core'

/** A credential role a secret can grant (`open` routes need none). */
export type GrantedRole = Exclude<Role, 'open'>

/** The secrets a node accepts, by what they grant; each list holds at most MAX_SECRETS_PER_ROLE (two during a rotation). */
export interface Secrets {
  /** The simple mode's `--token`: every role. */
  readonly all: readonly string[]
  readonly data: readonly string[]
  readonly admin: readonly string[]
  readonly metrics: readonly string[]
}

/** Secrets accepted per role at once: the current one and, while a rotation runs, the next. */
export const MAX_SECRETS_PER_ROLE = 2

export const NO_SECRETS: Secrets = { all: [], data: [], admin: [], metrics: [] }

const ROLES: readonly GrantedRole[] = ['data', 'admin', 'metrics']

/**
 * Secrets are compared as SHA-256 digests: digests have one length, so the
 * time a wrong guess takes tells neither how much of it matched nor how long
 * the secret is. It costs ~3 µs per request (of ~300 µs a node spends on one);
 * a length check before timingSafeEqual would be cheaper but tell the length.
 */
const digest = (text: string): Buffer => createHash('sha256').update(text).digest()

interface Entry {
  readonly digest: Buffer
  readonly grants: readonly GrantedRole[]
}

/**
 * The secrets a node holds, checked in constant time. `replace` swaps them
 * at once (SIGHUP re-reads the files), so a rotation needs no restart.
 */
export class Credentials {
  private entries: Entry[] = []
  private secrets: Secrets = NO_SECRETS

  constructor(secrets: Secrets) {
    this.replace(secrets)
  }

  /** Take a new set of secrets; requests from now on are checked against it. */
  replace(secrets: Secrets): void {
    this.secrets = secrets
    this.entries = [
      ...secrets.all.map((s) => ({ digest: digest(s), grants: ROLES })),
      ...ROLES.flatMap((role) => secrets[role].map((s) => ({ digest: digest(s), grants: [role] }))),
    ]
  }

  /** True when no secret grants `role`: its routes are open (a node without secrets, or one with only a metrics secret). */
  isOpen(role: GrantedRole): boolean {
    return this.secrets.all.length === 0 && this.secrets[role].length === 0
  }

  /** The secrets an admin signature may be made with. */
  adminSecrets(): readonly string[] {
    return [...this.secrets.all, ...this.secrets.admin]
  }

  /** What a presented secret grants (empty: none matched). Every entry is compared, so the time taken does not tell which matched. */
  rolesOf(presented: string): ReadonlySet<GrantedRole> {
    const d = digest(presented)
    const granted = new Set<GrantedRole>()
    for (const entry of this.entries) if (timingSafeEqual(d, entry.digest)) for (const role of entry.grants) granted.add(role)
    return granted
  }
}
