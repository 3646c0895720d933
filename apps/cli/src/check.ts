import { HttpTransport } from '@kvorum/client'
import type { NodeDef } from '@kvorum/core'
import { ACCESS_FLAGS, type ClusterAccess, accessFlags, parse, seedsFlag } from './args.js'
import { seedDefinition } from './status.js'

export const CHECK_HELP = `kvorum check --seeds URL [--full] [--admin-token T | --token T] [--json]
  Asks every node to check its database while it serves: SQLite's page check (quick_check; with
  --full, integrity_check, which also holds every index against its table and takes longer), then
  every row's checksum, decode and Merkle digest. Lists the damage per node: pages, and rows by
  store, partition and key. A damaged row is never served: the node reads it as missing and drops
  it, so \`kvorum repair\` restores it from the peers. Exit code 1 when anything is damaged or a node
  does not answer.
  --token-file, --admin-token-file, --tls-ca, --tls-cert, --tls-key: as every command (kvorum --help)`

/** Longest wait for one node's check, ms: it reads the whole database (about 1 GiB in a few seconds here). */
const CHECK_TIMEOUT_MS = 10 * 60 * 1000
/** Damaged rows printed per node (the JSON answer has the node's full list). */
const MAX_PRINTED_ROWS = 20

/** One node's answer to GET /v1/check, as far as the command reads it. */
interface NodeCheck {
  readonly atOpen: { readonly ran: boolean; readonly skipped?: string; readonly problems: readonly string[]; readonly reindexed: boolean }
  readonly pages: { readonly kind: string; readonly problems: readonly string[] }
  readonly rowsChecked: number
  readonly corruptRows: readonly { store: string; partition: number; key: string; reason: string }[]
  readonly corruptTotal: number
  readonly sinceOpenTotal: number
  readonly ms: number
}

type Outcome = { node: NodeDef; check: NodeCheck } | { node: NodeDef; error: string }

/** The check is an admin route: the admin token when one is given, else the one token of the simple mode. */
async function checkNode(transport: HttpTransport, node: NodeDef, access: ClusterAccess, full: boolean): Promise<Outcome> {
  const token = access.adminToken ?? access.token
  try {
    const res = await transport.send(node, {
      method: 'GET',
      path: `/v1/check${full ? '?full=1' : ''}`,
      headers: token ? { authorization: `Bearer ${token}` } : {},
      body: null,
      timeoutMs: CHECK_TIMEOUT_MS,
    })
    let body: NodeCheck | { code: string; message: string }
    try {
      body = JSON.parse(Buffer.from(res.body).toString('utf8'))
    } catch {
      return { node, error: `HTTP ${res.status} with an answer that is not JSON` }
    }
    if (res.status >= 400 || 'code' in body) return { node, error: 'code' in body ? `${body.code}: ${body.message}` : `HTTP ${res.status}` }
    return { node, check: body }
  } catch (e) {
    return { node, error: (e as Error).message }
  }
}

function print(outcome: Outcome): void {
  const { node } = outcome
  if ('error' in outcome) {
    console.log(`${node.id}  NOT CHECKED: ${outcome.error}`)
    return
  }
  const c = outcome.check
  const pages = c.pages.problems.length === 0 ? `${c.pages.kind} ok` : `${c.pages.kind}: ${c.pages.problems.length} problem(s)`
  const rows = c.corruptTotal === 0 ? 'no damaged rows' : `${c.corruptTotal} damaged row(s), refused and marked for repair`
  console.log(`${node.id}  ${pages}, ${c.rowsChecked} rows checked, ${rows} (${Math.round(c.ms)} ms)`)
  if (c.atOpen.problems.length > 0)
    console.log(`  at its last start: ${c.atOpen.problems.length} page problem(s)${c.atOpen.reindexed ? ', indexes rebuilt' : ''}`)
  if (!c.atOpen.ran) console.log(`  not checked at its last start: ${c.atOpen.skipped}`)
  if (c.sinceOpenTotal > c.corruptTotal) console.log(`  since its last start: ${c.sinceOpenTotal} damaged row(s) found in all (by reads and checks)`)
  for (const p of c.pages.problems.slice(0, MAX_PRINTED_ROWS)) console.log(`  page: ${p.replaceAll('\n', ' ')}`)
  for (const r of c.corruptRows.slice(0, MAX_PRINTED_ROWS)) console.log(`  row: store ${r.store} partition ${r.partition} key ${r.key}: ${r.reason}`)
  if (c.corruptRows.length > MAX_PRINTED_ROWS) console.log(`  ... and ${c.corruptRows.length - MAX_PRINTED_ROWS} more (--json lists them)`)
}

export async function check(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    seeds: { type: 'string' },
    ...ACCESS_FLAGS,
    full: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  })
  const access = accessFlags(values)
  // The same transport as every other command: its TLS settings (--tls-ca, --tls-cert, --tls-key) reach the check too.
  const transport = new HttpTransport(access)
  const outcomes: Outcome[] = []
  try {
    const nodes = (await seedDefinition(transport, seedsFlag(values.seeds))).nodes
    // One node at a time: each check reads its whole database, and nodes may share a disk.
    for (const node of nodes) outcomes.push(await checkNode(transport, node, access, values.full))
  } finally {
    await transport.close()
  }
  const damaged = outcomes.filter((o) => 'error' in o || o.check.pages.problems.length > 0 || o.check.corruptTotal > 0)
  if (values.json)
    console.log(
      JSON.stringify(
        outcomes.map((o) => ('error' in o ? { node: o.node.id, error: o.error } : { node: o.node.id, ...o.check })),
        null,
        2,
      ),
    )
  else {
    for (const o of outcomes) print(o)
    if (outcomes.some((o) => 'check' in o && o.check.corruptTotal > 0))
      console.log('run kvorum repair --seeds URL to restore the damaged rows from their peers')
  }
  return damaged.length === 0 ? 0 : 1
}
