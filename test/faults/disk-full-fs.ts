/**
 * The disk-full run on a real small file system: `npm run test:disk-full`.
 * Mounts a tmpfs of --fs-mib (default 8) as one node's data directory, so
 * that node meets ENOSPC from the kernel (not the --max-db-mib quota), and
 * drives a 3-node cluster (n=3, r=w=2) past it with the SDK. Prints one
 * markdown report (the rows of docs/reliability.md) and exits 1 if a put or
 * get failed, the full node stopped answering, or it did not take writes
 * again once space came back. Needs root (to mount); without it, it says it
 * skipped and why, and exits 0.
 */
import { execFileSync } from 'node:child_process'
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { type ClusterDef, type NodeDef, initialAssignment, storeDef } from '@kvorum/core'
import { HttpTransport, connect } from '@kvorum/client'
import { type NodeProcess, startNode, stopAllNodes } from '../support/node-process.js'

const TOKEN = 'disk-full-token'
/** Bytes of each value written. */
const VALUE_BYTES = 16 * 1024
/** Most puts the run makes: the file system fills long before. */
const MAX_PUTS = 5000

function mountTmpfs(dir: string, sizeMib: number): string | null {
  if (process.getuid?.() !== 0) return 'not running as root: mounting a tmpfs needs it (run as root, e.g. in a container)'
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMib}m`, 'tmpfs', dir], { stdio: 'pipe' })
    return null
  } catch (e) {
    return `mount -t tmpfs failed: ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`
  }
}

/** Most bytes a ballast file takes: more than any file system the run mounts. */
const MAX_BALLAST_BYTES = 1024 * 1024 * 1024

/** Write `path` until the file system is full (ENOSPC). */
function fillDisk(path: string): void {
  const fd = openSync(path, 'w')
  const chunk = Buffer.alloc(64 * 1024)
  try {
    for (let written = 0; written < MAX_BALLAST_BYTES; written += chunk.length) writeSync(fd, chunk)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e
  } finally {
    closeSync(fd)
  }
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text()
  return Number(
    text
      .split('\n')
      .find((l) => l.startsWith(`${name} `))
      ?.split(' ')[1] ?? Number.NaN,
  )
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { 'fs-mib': { type: 'string', default: '8' } } })
  const fsMib = Number(values['fs-mib'])
  const root = mkdtempSync(join(tmpdir(), 'kvorum-disk-full-'))
  const small = join(root, 'small')
  mkdirSync(small)
  const skipped = mountTmpfs(small, fsMib)
  if (skipped) {
    console.log(`# Disk full on a real file system: skipped (${skipped})`)
    rmSync(root, { recursive: true, force: true })
    return 0
  }
  const procs = new Map<string, NodeProcess>()
  const problems: string[] = []
  const lines: string[] = []
  const note = (line: string) => {
    lines.push(line)
    console.error(line)
  }
  const started = performance.now()
  const at = () => `${((performance.now() - started) / 1000).toFixed(1)} s`
  try {
    // A ballast file the operator can delete to give space back.
    writeFileSync(join(small, 'ballast'), Buffer.alloc(1024 * 1024))
    for (const id of ['n1', 'n2', 'n3'])
      procs.set(id, await startNode({ id, data: id === 'n1' ? join(small, 'n1') : join(root, id), token: TOKEN, readyTimeoutMs: 20_000 }))
    const defs: NodeDef[] = [...procs].map(([id, p]) => ({ id, url: p.url }))
    const def: ClusterDef = {
      version: 1,
      partitions: 64,
      nodes: defs,
      assignment: initialAssignment(defs, 64),
      stores: [storeDef({ name: 'default', n: 3, r: 2, w: 2 })],
    }
    const transport = new HttpTransport({ token: TOKEN })
    for (const n of defs) await transport.node(n).putCluster({ timeoutMs: 5000 }, def)
    const n1 = defs[0] as NodeDef
    const kv = await connect({ seeds: defs.map((d) => d.url), token: TOKEN, timeoutMs: 5000 })
    const s = kv.store<string>('default', { codec: 'utf8' })
    const value = (i: number) => `v${i}-`.padEnd(VALUE_BYTES, '.')

    let puts = 0
    let failed = 0
    let fullAt = -1
    for (let i = 0; i < MAX_PUTS; i++) {
      try {
        await s.put(`k${i}`, value(i))
        puts++
      } catch (e) {
        failed++
        problems.push(`put k${i}: ${(e as Error).message}`)
      }
      if (fullAt < 0 && (await metric(n1.url, 'kvorum_node_disk_full')) === 1) fullAt = i
      // Keep writing for as long again after the disk filled, then stop.
      if (fullAt >= 0 && i >= fullAt * 2 + 50) break
    }
    const refusals = await metric(n1.url, 'kvorum_node_disk_full_refusals_total')
    note(`| writes | ${puts} puts of ${VALUE_BYTES / 1024} KiB taken, ${failed} failed; n1's ${fsMib} MiB tmpfs filled at put ${fullAt} (${at()}) |`)
    note(`| n1 refused | ${refusals} writes with KV_DISK_FULL; \`kvorum_node_disk_full\` = ${await metric(n1.url, 'kvorum_node_disk_full')} |`)
    if (fullAt < 0) problems.push('n1 never reported a full disk')

    let readsOk = 0
    for (let i = 0; i < puts + failed; i++) if ((await s.get(`k${i}`)).values[0] === value(i)) readsOk++
    const own = (await transport.node(n1).get({ timeoutMs: 5000 }, 'default', [new TextEncoder().encode('k0')]))[0]
    note(
      `| reads | ${readsOk} of ${puts + failed} keys read back whole (r=2); n1 still serves its own copy of k0: ${own?.ok ? 'yes' : `no (${JSON.stringify(own)})`} |`,
    )
    if (readsOk !== puts) problems.push(`${puts - readsOk} keys did not read back`)
    if (!own?.ok) problems.push('n1 stopped serving reads')

    // Space returns: the operator deletes the ballast. No restart.
    rmSync(join(small, 'ballast'))
    let back = false
    for (let i = 0; i < 20 && !back; i++) {
      await s.put(`after-${i}`, 'room again')
      const got = (await transport.node(n1).get({ timeoutMs: 5000 }, 'default', [new TextEncoder().encode(`after-${i}`)]))[0]
      back = got?.ok === true && got.value.length > 0
    }
    note(
      `| space back | after deleting 1 MiB of ballast n1 took new writes again without a restart: ${back ? 'yes' : 'no'}; \`kvorum_node_disk_full\` = ${await metric(n1.url, 'kvorum_node_disk_full')} |`,
    )
    if (!back) problems.push('n1 did not take writes once space came back')

    // Full again (a file takes the rest of the disk): a stop, and a start, while it is.
    const ballast = join(small, 'ballast-2')
    fillDisk(ballast)
    const first = procs.get('n1') as NodeProcess
    const stopped = await first.stop('SIGTERM')
    note(`| stop while full | n1 stopped on SIGTERM with exit code ${stopped.code} |`)
    if (stopped.code !== 0) problems.push(`n1 stopped while full with ${JSON.stringify(stopped)}: ${first.output()}`)
    const start = () => startNode({ id: 'n1', data: join(small, 'n1'), token: TOKEN, port: first.port, readyTimeoutMs: 20_000 })
    let running = false
    try {
      procs.set('n1', await start())
      running = true
      const read = (await transport.node(n1).get({ timeoutMs: 5000 }, 'default', [new TextEncoder().encode('k0')]))[0]
      note(`| start while full | n1 started and serves its own copy of k0: ${read?.ok ? 'yes' : 'no'} |`)
    } catch (e) {
      const why = /kvorum-node: (KV_\w+: [^\n]*)/.exec(String((e as Error).message))?.[1] ?? String(e).slice(0, 200)
      note(`| start while full | n1 refused to start: ${why} |`)
    }
    rmSync(ballast)
    if (!running) procs.set('n1', await start())
    await s.put('after-restart', 'room again')
    const got = (await transport.node(n1).get({ timeoutMs: 5000 }, 'default', [new TextEncoder().encode('after-restart')]))[0]
    const stored = got?.ok === true && got.value.length > 0
    note(`| after the start | with the second ballast deleted, n1 stores a new write: ${stored ? 'yes' : 'no'} |`)
    if (!stored) problems.push('n1 did not store a write after the start')
    await kv.close(500)
    await transport.close()

    const exit = await (procs.get('n1') as NodeProcess).stop('SIGTERM')
    note(`| stop | n1 stopped on SIGTERM with exit code ${exit.code} |`)
    if (exit.code !== 0) problems.push(`n1 exited with ${JSON.stringify(exit)}: ${procs.get('n1')?.output()}`)
  } finally {
    await stopAllNodes()
    try {
      execFileSync('umount', [small], { stdio: 'pipe' })
    } catch {
      // left mounted: say so below
      problems.push(`could not unmount ${small}`)
    }
    rmSync(root, { recursive: true, force: true })
  }
  console.log(`# Disk full on a real file system (${fsMib} MiB tmpfs as n1's data directory, n=3 r=w=2)\n`)
  console.log('| what | result |\n|---|---|')
  for (const line of lines) console.log(line)
  console.log(problems.length === 0 ? '\nNo problems.' : `\nProblems:\n${problems.map((p) => `- ${p}`).join('\n')}`)
  return problems.length === 0 ? 0 : 1
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e)
    process.exit(1)
  },
)
