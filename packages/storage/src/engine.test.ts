import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { covers, setContext, toHex, utf8 } from '@kvorum/core'
import { StorageEngine } from './engine.js'
import { type EngineFactory, coordinatePut, engineSuite, ok, singleNodeCluster, values } from './engine.case.js'
import { engineUpkeepSuite } from './engine-upkeep.case.js'

let dir = ''
let files = 0
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kvorum-engine-'))
})
afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

const onFile: EngineFactory = (options) => new StorageEngine({ ...options, path: join(dir, `engine-${files++}.db`) })
const inMemory: EngineFactory = (options) => new StorageEngine({ ...options, path: ':memory:' })
engineSuite('sqlite file', onFile)
engineSuite(':memory:', inMemory)
engineUpkeepSuite('sqlite file', onFile)
engineUpkeepSuite(':memory:', inMemory)

describe('StorageEngine on a file, reopened', () => {
  const opened: StorageEngine[] = []
  afterEach(() => {
    for (const e of opened.splice(0)) e.close()
  })
  const open = (path: string) => {
    const e = new StorageEngine({ path, nodeId: 'n1', durability: 'full' })
    opened.push(e)
    return e
  }
  const keys = Array.from({ length: 40 }, (_, i) => utf8(`r${i}`))

  it('keeps its data, cluster and Merkle leaves, and takes a new incarnation', async () => {
    const path = join(dir, 'reopen.db')
    const first = open(path)
    await first.putCluster(singleNodeCluster())
    await coordinatePut(
      first,
      'kv',
      keys.map((key, i) => ({ key, value: i % 5 === 0 ? null : utf8(`v${i}`), context: {}, timestamp: 1 })),
    )
    const before = await first.get('kv', keys)
    const rootsBefore = toHex(await first.merkleRoots('kv'))
    const oldIncarnation = first.incarnation
    first.close()

    const second = open(path)
    expect(second.incarnation).not.toBe(oldIncarnation)
    expect((await second.health()).clusterVersion).toBe(1)
    expect(await second.get('kv', keys)).toEqual(before)
    expect(toHex(await second.merkleRoots('kv'))).toBe(rootsBefore)

    // A write after the reopen gets a dot the old context cannot cover.
    const oldContext = setContext(ok(before[1]))
    const [res] = await coordinatePut(second, 'kv', [{ key: keys[1] as Uint8Array, value: utf8('later'), context: {}, timestamp: 2 }])
    const { dot, siblings } = ok(res)
    expect(dot.actor).toBe(second.incarnation)
    expect(covers(oldContext, dot)).toBe(false)
    expect(values(siblings)).toEqual(['later', 'v1'])
  })

  it('close() commits the writes still queued for the next group', async () => {
    const path = join(dir, 'queued.db')
    const first = open(path)
    await first.putCluster(singleNodeCluster())
    const pending = coordinatePut(first, 'kv', [{ key: utf8('queued'), value: utf8('yes'), context: {}, timestamp: 1 }])
    expect(first.queueDepth).toBe(1)
    first.close()
    expect(values(ok((await pending)[0]).siblings)).toEqual(['yes'])
    const second = open(path)
    expect(values(ok((await second.get('kv', [utf8('queued')]))[0]))).toEqual(['yes'])
  })

  it('abandon() is a crash: queued writes are never applied nor answered, committed ones stay, and the next open rebuilds the leaves', async () => {
    const path = join(dir, 'abandoned.db')
    const first = open(path)
    await first.putCluster(singleNodeCluster())
    await coordinatePut(first, 'kv', [{ key: utf8('kept'), value: utf8('committed'), context: {}, timestamp: 1 }])
    const roots = toHex(await first.merkleRoots('kv'))
    let answered = false
    void coordinatePut(first, 'kv', [{ key: utf8('lost'), value: utf8('queued'), context: {}, timestamp: 1 }]).finally(() => (answered = true))
    expect(first.abandon()).toBe(1)
    expect(first.abandon()).toBe(0)
    await expect(first.get('kv', [utf8('kept')])).rejects.toMatchObject({ code: 'KV_NODE_CLOSED' })
    await new Promise((resolve) => setImmediate(resolve))
    expect(answered).toBe(false)

    const second = open(path)
    // No snapshot was written at the crash: the leaves come from the rows.
    expect(second.leavesOpened.rebuilt).toBe(true)
    expect(toHex(await second.merkleRoots('kv'))).toBe(roots)
    const [kept, lost] = await second.get('kv', [utf8('kept'), utf8('lost')])
    expect(values(ok(kept))).toEqual(['committed'])
    expect(ok(lost)).toEqual([])
  })

  it('takes its incarnation from the incarnationId option, a new one at every open', async () => {
    const ids = ['first-id', 'second-id']
    const path = join(dir, 'incarnations.db')
    const first = new StorageEngine({ path, nodeId: 'n1', incarnationId: () => ids.shift() ?? 'none' })
    opened.push(first)
    await first.putCluster(singleNodeCluster())
    const [res] = await coordinatePut(first, 'kv', [{ key: utf8('k'), value: utf8('v'), context: {}, timestamp: 1 }])
    expect(ok(res).dot.actor).toBe('first-id')
    expect((await first.health()).incarnation).toBe('first-id')
    first.close()
    const second = new StorageEngine({ path, nodeId: 'n1', incarnationId: () => ids.shift() ?? 'none' })
    opened.push(second)
    expect(second.incarnation).toBe('second-id')
    // By default: 6 random bytes in hex, different at each open.
    expect(open(':memory:').incarnation).toMatch(/^[0-9a-f]{12}$/)
  })
})

describe('the zone a node was started in', () => {
  it('is told in health (the CLI takes a joiner zone from there), and absent when none was given', async () => {
    const zoned = new StorageEngine({ path: ':memory:', nodeId: 'z', zone: 'rack-2' })
    const plain = new StorageEngine({ path: ':memory:', nodeId: 'p' })
    try {
      expect(await zoned.health()).toMatchObject({ id: 'z', zone: 'rack-2' })
      expect((await plain.health()).zone).toBeUndefined()
    } finally {
      zoned.close()
      plain.close()
    }
  })
})
