import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Kvorum } from '@kvorum/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ProcessCluster, startCluster } from '../support/process-cluster.js'
import { utf8 } from '@kvorum/core'
import { ExportWriter } from '../../apps/cli/src/export-format.js'
import { runCli } from './run-cli.js'

// kvorum keys / count / export / import through the built binary against real nodes: a source
// cluster and an empty one to restore into.

let source: ProcessCluster
let target: ProcessCluster
let dir: string

const envOf = (c: ProcessCluster) => ({ KVORUM_SEEDS: c.seeds.map((u) => u.replace('http://', '')).join(','), KVORUM_TOKEN: c.token })
const cli = (c: ProcessCluster, args: string[]) => runCli(args, { env: envOf(c), timeoutMs: 60_000 })

/** What a reader sees for every key: values (sorted), siblings and context, by key. */
async function reads(kv: Kvorum, keys: readonly string[]): Promise<Record<string, unknown>> {
  const s = kv.store<string>('default', { codec: 'utf8' })
  const out: Record<string, unknown> = {}
  for (const k of keys) {
    const r = await s.get(k, { r: 3 })
    out[k] = { found: r.found, values: [...r.values].sort(), siblings: r.siblings, context: r.context }
  }
  return out
}

/** Every key's raw merged set (tombstones and clocks included), from all replicas. */
async function rawSets(kv: Kvorum): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for await (const item of kv.store('default').versions({ replicas: 3 })) out.set(Buffer.from(item.key).toString('utf8'), JSON.stringify(item.siblings))
  return out
}

beforeAll(async () => {
  ;[source, target] = await Promise.all([startCluster({ nodes: 3, partitions: 16 }), startCluster({ nodes: 3, partitions: 16 })])
  dir = mkdtempSync(join(tmpdir(), 'kvorum-export-'))
}, 90_000)

afterAll(async () => {
  await Promise.all([source?.close(), target?.close()])
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('kvorum keys and count', { timeout: 60_000 }, () => {
  it('list and count the live keys; --prefix filters; --limit prints the command that goes on', async () => {
    const kv = await source.connect()
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.putMany(Array.from({ length: 30 }, (_, i) => ({ key: `user:${i}`, value: `u${i}` })))
    await s.putMany(Array.from({ length: 5 }, (_, i) => ({ key: `cart:${i}`, value: `c${i}` })))
    await s.delete('user:7')
    const listed = await cli(source, ['keys', 'default'])
    expect(listed.code, listed.stderr).toBe(0)
    const keys = listed.stdout.trimEnd().split('\n')
    expect(keys).toHaveLength(34)
    expect(keys).not.toContain('user:7')
    const carts = await cli(source, ['keys', 'default', '--prefix', 'cart:'])
    expect(carts.stdout.trimEnd().split('\n').sort()).toEqual(['cart:0', 'cart:1', 'cart:2', 'cart:3', 'cart:4'])
    const first = await cli(source, ['keys', 'default', '--limit', '20'])
    const resume = /--cursor (\S+)/.exec(first.stderr)?.[1]
    expect(resume, first.stderr).toBeDefined()
    const rest = await cli(source, ['keys', 'default', '--limit', '20', '--cursor', resume as string])
    expect([...first.stdout.trimEnd().split('\n'), ...rest.stdout.trimEnd().split('\n')].sort()).toEqual([...keys].sort())
    const count = await cli(source, ['count', 'default', '--json'])
    expect(count.code, count.stderr).toBe(0)
    expect(JSON.parse(count.stdout)).toEqual({ store: 'default', keys: 34 })
    expect(count.stderr).toMatch(/count 16\/16 partitions, 34 keys/)
    const bad = await cli(source, ['keys', 'default', '--cursor', 'nope'])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(/^kvorum: KV_INVALID_INPUT: cursor "nope" is not a listing cursor\n$/)
  })
})

describe('kvorum export and import', { timeout: 120_000 }, () => {
  const file = () => join(dir, 'default.kvx')

  it('restore into an empty cluster reproduces every read exactly: siblings, tombstones, contexts', async () => {
    const kv = await source.connect()
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('sib', 'left')
    await s.put('sib', 'right') // blind: a sibling of 'left'
    await s.put('gone', 'soon')
    await s.delete('gone')
    const before = await reads(kv, [...(await collect(s.keys())), 'gone', 'user:7'])
    expect(before.sib).toMatchObject({ values: ['left', 'right'], siblings: 2 })
    expect(before.gone).toMatchObject({ found: false })
    const exported = await cli(source, ['export', 'default', '--out', file(), '--json'])
    expect(exported.code, exported.stderr).toBe(0)
    const summary = JSON.parse(exported.stdout) as { keys: number; bytes: number }
    expect(summary.keys).toBe(Object.keys(before).length)
    expect(readFileSync(file()).length).toBe(summary.bytes)
    expect(exported.stderr).toMatch(/export 16\/16 partitions/)

    const imported = await cli(target, ['import', file(), '--json'])
    expect(imported.code, imported.stderr).toBe(0)
    expect(JSON.parse(imported.stdout)).toMatchObject({ store: 'default', keys: summary.keys, failed: 0 })
    const restored = await target.connect()
    expect(await reads(restored, Object.keys(before))).toEqual(before)
    // The tombstone travelled too: the key is deleted, not merely absent.
    expect(JSON.parse((await rawSets(restored)).get('gone') as string)).toEqual([expect.objectContaining({ value: null })])

    // Importing twice changes nothing, on any replica.
    const once = await rawSets(restored)
    expect((await cli(target, ['import', file()])).code).toBe(0)
    expect(await rawSets(restored)).toEqual(once)
  })

  it('a key deleted after the export stays deleted; one that diverged keeps both histories as siblings', async () => {
    const kv = await source.connect()
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('undead', 'v1')
    await s.put('fork', 'base')
    await s.put('clash', 'from-source')
    const elsewhere = await target.connect()
    await elsewhere.store<string>('default', { codec: 'utf8' }).put('clash', 'from-target')
    expect((await cli(source, ['export', 'default', '--out', file()])).code).toBe(0)
    await s.delete('undead')
    const fork = await s.get('fork')
    await s.put('fork', 'moved-on', { context: fork.context })
    // Another writer, unaware of the export's history, writes the same key independently.
    const other = await source.connect()
    await other.store<string>('default', { codec: 'utf8' }).put('fork', 'independent')

    const run = await cli(source, ['import', file()])
    expect(run.code, run.stderr).toBe(0)
    expect((await s.get('undead', { r: 3 })).found).toBe(false)
    // 'base' is covered by 'moved-on' (its writer saw it); 'independent' was concurrent with both.
    expect((await s.get('fork', { r: 3 })).values.sort()).toEqual(['independent', 'moved-on'])
    // Into another cluster whose history of the key is its own: both histories stay, as siblings.
    expect((await cli(target, ['import', file()])).code).toBe(0)
    expect((await elsewhere.store<string>('default', { codec: 'utf8' }).get('clash', { r: 3 })).values.sort()).toEqual(['from-source', 'from-target'])
  })

  it('a damaged or truncated file is refused with KV_BAD_EXPORT before anything is imported', async () => {
    const kv = await source.connect()
    await kv.store<string>('default', { codec: 'utf8' }).put('only-in-export', 'x')
    expect((await cli(source, ['export', 'default', '--out', file()])).code).toBe(0)
    const bytes = readFileSync(file())
    const damaged = Buffer.from(bytes)
    const middle = Math.floor(bytes.length / 2)
    damaged[middle] = (damaged[middle] as number) ^ 0x01
    writeFileSync(join(dir, 'damaged.kvx'), damaged)
    writeFileSync(join(dir, 'short.kvx'), bytes.subarray(0, bytes.length - 40))
    const empty = await target.connect()
    for (const [name, why] of [
      ['damaged.kvx', /(checksum does not match|malformed)/],
      ['short.kvx', /truncated/],
    ] as const) {
      const run = await cli(target, ['import', join(dir, name), '--store', 'default'])
      expect(run.code).toBe(1)
      expect(run.stderr).toMatch(/^kvorum: KV_BAD_EXPORT: .* is not an intact Kvorum export \(format 1\): .*; nothing was imported\n$/)
      expect(run.stderr).toMatch(why)
    }
    expect((await empty.store('default').get('only-in-export', { r: 3 })).found).toBe(false)
  })
})

describe('an export older than the tombstone grace', { timeout: 60_000 }, () => {
  it('is refused, importing nothing, unless --past-grace says to import it anyway', async () => {
    const path = join(dir, 'old.kvx')
    const out = createWriteStream(path)
    const writer = new ExportWriter(out)
    // Two days old, past the default one-day grace: a delete since may have been reaped.
    await writer.start({ format: 1, store: 'default', conflict: 'siblings', startedAt: new Date(Date.now() - 2 * 86_400_000).toISOString() })
    await writer.add({ key: utf8('from-old-export'), siblings: [{ dot: { actor: 'old1', counter: 1 }, context: {}, timestamp: 1, value: utf8('old') }] })
    await writer.finish()
    await new Promise<void>((resolve) => out.end(resolve))
    const refused = await cli(target, ['import', path])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(
      /^kvorum: KV_INVALID_INPUT: the export started 48\.0 h ago, longer than store default's tombstoneGraceMs \(24\.0 h\).*nothing was imported/,
    )
    const kv = await target.connect()
    const s = kv.store<string>('default', { codec: 'utf8' })
    expect((await s.get('from-old-export', { r: 3 })).found).toBe(false)
    expect((await cli(target, ['import', path, '--past-grace'])).code).toBe(0)
    expect((await s.get('from-old-export', { r: 3 })).values).toEqual(['old'])
  })

  it('is refused within 5 minutes of the grace too, since the exporting machine, this one and the nodes may disagree on the time', async () => {
    const path = join(dir, 'nearly-old.kvx')
    const out = createWriteStream(path)
    const writer = new ExportWriter(out)
    // Two minutes short of the one-day grace by this clock: a node whose clock runs ahead may already have reaped.
    const startedAt = new Date(Date.now() - 86_400_000 + 2 * 60_000).toISOString()
    await writer.start({ format: 1, store: 'default', conflict: 'siblings', startedAt })
    await writer.add({ key: utf8('from-nearly-old-export'), siblings: [{ dot: { actor: 'old2', counter: 1 }, context: {}, timestamp: 1, value: utf8('old') }] })
    await writer.finish()
    await new Promise<void>((resolve) => out.end(resolve))
    const refused = await cli(target, ['import', path])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/^kvorum: KV_INVALID_INPUT: the export started 24\.0 h ago, .*\(24\.0 h\) less 5 min for clock skew.*nothing was imported/)
    const kv = await target.connect()
    expect((await kv.store<string>('default', { codec: 'utf8' }).get('from-nearly-old-export', { r: 3 })).found).toBe(false)
  })
})

describe('import in bulk', { timeout: 120_000 }, () => {
  /** A node's merged writes and SQLite transactions so far, from its /metrics. */
  async function writeCounts(url: string): Promise<{ merged: number; commits: number }> {
    const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${target.token}` } })).text()
    const count = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? Number.NaN)
    return { merged: count('kvorum_node_merged_writes_total'), commits: count('kvorum_node_group_commits_total') }
  }

  /** An export file of `keys` keys named `${prefix}:${i}`, one version each. */
  async function bulkFile(name: string, prefix: string, keys: number): Promise<string> {
    const path = join(dir, name)
    const out = createWriteStream(path)
    const writer = new ExportWriter(out)
    await writer.start({ format: 1, store: 'default', conflict: 'siblings', startedAt: new Date().toISOString() })
    for (let i = 0; i < keys; i++) {
      await writer.add({ key: utf8(`${prefix}:${i}`), siblings: [{ dot: { actor: prefix, counter: i + 1 }, context: {}, timestamp: 1, value: utf8(`v${i}`) }] })
    }
    await writer.finish()
    await new Promise<void>((resolve) => out.end(resolve))
    return path
  }

  it('every replica takes every key, in node requests larger than the SDK default of 256 merges', async () => {
    const keys = 6144
    const path = await bulkFile('bulk.kvx', 'bulk', keys)
    const before = await Promise.all(target.seeds.map(writeCounts))
    const run = await cli(target, ['import', path, '--json'])
    expect(run.code, run.stderr).toBe(0)
    expect(JSON.parse(run.stdout)).toMatchObject({ keys, failed: 0 })
    const after = await Promise.all(target.seeds.map(writeCounts))
    for (const [i, b] of before.entries()) {
      const merged = (after[i]?.merged ?? 0) - b.merged
      const commits = (after[i]?.commits ?? 0) - b.commits
      // n = 3 on 3 nodes: each node is a replica of every key.
      expect(merged).toBeGreaterThanOrEqual(keys)
      // Fewer, larger transactions: with 256-merge requests this is 256 at best.
      expect(merged / commits).toBeGreaterThan(384)
    }
    const kv = await target.connect()
    const s = kv.store<string>('default', { codec: 'utf8' })
    expect((await s.get('bulk:0', { r: 3 })).values).toEqual(['v0'])
    expect((await s.get(`bulk:${keys - 1}`, { r: 3 })).values).toEqual([`v${keys - 1}`])
  })

  it('nodes that stall for 2 s are waited for, not sent the same merges again', async () => {
    const keys = 20_000
    const path = await bulkFile('stall.kvx', 'stall', keys)
    const before = await Promise.all(target.seeds.map(writeCounts))
    const first = target.seeds[0] as string
    const run = cli(target, ['import', path, '--json'])
    // Once the first node has taken merges the import is under way: stall the other two replicas.
    const deadline = Date.now() + 30_000
    while ((await writeCounts(first)).merged === before[0]?.merged && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    target.pause('n2')
    target.pause('n3')
    await new Promise((r) => setTimeout(r, 2000))
    target.resume('n2')
    target.resume('n3')
    const done = await run
    expect(done.code, done.stderr).toBe(0)
    expect(JSON.parse(done.stdout)).toMatchObject({ keys, failed: 0 })
    const after = await Promise.all(target.seeds.map(writeCounts))
    // Each replica merged each key once: no request timed out and was sent again.
    expect(after.map((a, i) => a.merged - (before[i]?.merged ?? 0))).toEqual([keys, keys, keys])
  })
})

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of items) out.push(item)
  return out
}
