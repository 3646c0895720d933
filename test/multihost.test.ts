import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type ClusterDef, type NodeDef, Ring, initialAssignment, storeDef, utf8 } from '@kvorum/core'
import { HttpTransport, type Kvorum, connect } from '@kvorum/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Host, HostNetwork, hostMode } from './support/hosts.js'
import { type NodeProcess, startNode } from './support/node-process.js'

/**
 * Nodes on distinct addresses, as on separate machines: each in a network
 * namespace of its own when this runs as root, else on its own loopback
 * address. Six nodes in three zones, two each; every store n=3, r=2, w=2.
 */
const MODE = hostMode()
const HOSTS = 6
const ZONES = ['z1', 'z2', 'z3'] as const
const TOKEN = 'multihost-token'
const PARTITIONS = 64
const T = { timeoutMs: 5000 }
/** The port every node listens on inside its own namespace, as on a real machine; on loopback the system picks. */
const NETNS_PORT = 7070
/** Keys written before the cut, and during it. */
const KEYS = 60
/** Longest the SDK's failure detector may take to see the cut nodes down, in reads. */
const DETECT_READS = 200

const zoneOf = (host: Host) => ZONES[(host.index - 1) % ZONES.length] as string

let net: HostNetwork | undefined
let root = ''
const procs: NodeProcess[] = []
let defs: NodeDef[] = []
let def: ClusterDef
let transport: HttpTransport
let kv: Kvorum | undefined

beforeAll(async () => {
  if (MODE.kind === 'loopback') console.log(`multihost: distinct loopback addresses (${MODE.reason})`)
  net = HostNetwork.create(HOSTS, MODE)
  root = mkdtempSync(join(tmpdir(), 'kvorum-multihost-'))
  const started = await Promise.allSettled(
    net.hosts.map((host) =>
      startNode({
        data: join(root, `n${host.index}`),
        id: `n${host.index}`,
        host: host.address,
        port: MODE.kind === 'netns' ? NETNS_PORT : 0,
        token: TOKEN,
        launcher: host.launcher,
        args: ['--zone', zoneOf(host)],
      }),
    ),
  )
  for (const s of started) if (s.status === 'fulfilled') procs.push(s.value)
  const failed = started.find((s) => s.status === 'rejected')
  if (failed) throw failed.reason
  defs = procs.map((p, i) => ({ id: `n${i + 1}`, url: p.url, zone: zoneOf(net?.hosts[i] as Host) }))
  def = {
    version: 1,
    partitions: PARTITIONS,
    nodes: defs,
    assignment: initialAssignment(defs, PARTITIONS),
    stores: [storeDef({ name: 'default', n: 3, r: 2, w: 2 })],
  }
  transport = new HttpTransport({ token: TOKEN })
  for (const n of defs) await transport.node(n).putCluster(T, def)
  kv = await connect({ seeds: defs.map((d) => d.url), token: TOKEN, timeoutMs: 3000, requestTimeoutMs: 1000, detector: { probeIntervalMs: 200 } })
}, 90_000)

afterAll(async () => {
  await kv?.close(500)
  await transport?.close()
  // By PID: a paused or cut node is killed all the same.
  await Promise.all(procs.map((p) => p.kill9()))
  net?.close()
  rmSync(root, { recursive: true, force: true })
  const left = net?.leftOver() ?? []
  if (left.length > 0) throw new Error(`network namespaces or links left behind: ${left.join(', ')}`)
})

/** The node answering /health at `url`, or the error it failed with. */
async function health(url: string, ms: number): Promise<{ id?: string; zone?: string } | Error> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(ms) })
    return (await res.json()) as { id?: string; zone?: string }
  } catch (e) {
    return e as Error
  }
}

/** The replicas of `key` that hold `value`, read from each primary directly. */
async function holders(key: string, value: string): Promise<string[]> {
  const ring = new Ring(def)
  const out: string[] = []
  for (const id of ring.primaries(ring.partitionOf(utf8(key)), 3)) {
    const node = defs.find((d) => d.id === id) as NodeDef
    const [res] = await transport.node(node).get(T, 'default', [utf8(key)])
    if (res?.ok && res.value.some((v) => v.value !== null && Buffer.from(v.value).toString() === value)) out.push(id)
  }
  return out
}

describe(`nodes on distinct addresses (${MODE.kind === 'netns' ? 'network namespaces' : 'loopback addresses'}), three zones`, () => {
  it('each node answers at its own address with its own id and zone', async () => {
    const answers = await Promise.all(defs.map((d) => health(d.url, 3000)))
    expect(answers.map((a) => (a instanceof Error ? a.message : `${a.id}@${a.zone}`))).toEqual(defs.map((d) => `${d.id}@${d.zone}`))
    expect(new Set(defs.map((d) => new URL(d.url).hostname)).size).toBe(HOSTS)
    if (MODE.kind === 'loopback') {
      // Bound to its address only: the same port on 127.0.0.1 is not it.
      const other = await health(`http://127.0.0.1:${new URL(defs[0]?.url as string).port}`, 3000)
      expect(other instanceof Error || other.id !== defs[0]?.id).toBe(true)
    }
  })

  it('every partition keeps one replica in each zone, and a write lands in all three zones', async () => {
    const ring = new Ring(def)
    for (let p = 0; p < PARTITIONS; p++) {
      const zones = ring.primaries(p, 3).map((id) => defs.find((d) => d.id === id)?.zone)
      expect(new Set(zones).size, `partition ${p}: ${zones.join(',')}`).toBe(3)
    }
    const store = (kv as Kvorum).store<string>('default', { codec: 'utf8' })
    await store.put('zones', 'everywhere')
    const got = await holders('zones', 'everywhere')
    expect(new Set(got.map((id) => defs.find((d) => d.id === id)?.zone)).size).toBe(3)
  })

  const linkReason = MODE.kind === 'netns' ? '' : ` (skipped: ${MODE.reason}; a link can only be taken down between namespaces)`
  it.skipIf(MODE.kind !== 'netns')(
    `a zone cut off by taking its links down: every key stays readable and writable with two primaries, and repair brings the cut zone up to date${linkReason}`,
    async () => {
      const network = net as HostNetwork
      const client = kv as Kvorum
      const store = client.store<string>('default', { codec: 'utf8' })
      for (let i = 0; i < KEYS; i++) await store.put(`before-${i}`, `b${i}`)
      const cut = network.hosts.filter((h) => zoneOf(h) === 'z3')
      const cutIds = cut.map((h) => `n${h.index}`)
      for (const h of cut) network.cut(h)
      try {
        // A pulled cable: the request is not refused, it goes unanswered.
        for (const id of cutIds) expect(await health(defs.find((d) => d.id === id)?.url as string, 1500)).toBeInstanceOf(Error)
        // Reads try the next primary; the detector marks the cut nodes down after their timeouts (a read that
        // times out meanwhile, on a loaded machine, is not what this test judges: the writes and reads after it are).
        for (let i = 0; i < DETECT_READS && cutIds.some((id) => client.stats().nodes[id]?.up !== false); i++)
          await store.get(`before-${i % KEYS}`).catch(() => undefined)
        expect(cutIds.map((id) => client.stats().nodes[id]?.up)).toEqual([false, false])
        // Two primaries of every key are outside the cut zone: pw=2 holds without a hint.
        for (let i = 0; i < KEYS; i++) await store.put(`during-${i}`, `d${i}`, { pw: 2 })
        for (let i = 0; i < KEYS; i++) {
          expect((await store.get(`before-${i}`)).values).toEqual([`b${i}`])
          expect((await store.get(`during-${i}`)).values).toEqual([`d${i}`])
        }
      } finally {
        for (const h of cut) network.heal(h)
      }
      for (const id of cutIds) {
        let answer: Awaited<ReturnType<typeof health>> = new Error('not asked')
        for (let i = 0; i < 20 && answer instanceof Error; i++) answer = await health(defs.find((d) => d.id === id)?.url as string, 1000)
        expect(answer).toMatchObject({ id })
      }
      // The cut zone missed the writes made during the cut; one repair pass brings them.
      const missing = (await Promise.all(Array.from({ length: KEYS }, (_, i) => holders(`during-${i}`, `d${i}`)))).filter((h) => h.length < 3)
      expect(missing.length).toBe(KEYS)
      await client.repair()
      for (let i = 0; i < KEYS; i++) expect((await holders(`during-${i}`, `d${i}`)).length).toBe(3)
    },
    120_000,
  )
})
