/**
 * Writing keys a node has never held (an import, a load, a growing data set)
 * into one engine whose cache of recent keys is full, so that every write
 * also forgets the oldest cached key. Prints the CPU it took (this process,
 * user + system), so builds can be compared close in time.
 *
 *   npx tsx --conditions=kvorum-source test/bench/new-keys.ts [--keys 300000] [--cache-keys 50000] [--value-bytes 100]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { type ClusterDef, type KeySet, initialAssignment, storeDef, utf8 } from '@kvorum/core'
import { StorageEngine } from '@kvorum/storage'

/** Keys per merge batch, as an import sends them. */
const BATCH = 1000

const { values } = parseArgs({
  options: {
    keys: { type: 'string', default: '300000' },
    'cache-keys': { type: 'string', default: '50000' },
    'value-bytes': { type: 'string', default: '100' },
  },
})
const keys = Number(values.keys)
const valueBytes = Number(values['value-bytes'])
const dir = mkdtempSync(join(tmpdir(), 'kvorum-new-keys-'))
const nodes = [{ id: 'n1', url: 'mem://n1' }]
const def: ClusterDef = { version: 1, partitions: 8, nodes, assignment: initialAssignment(nodes, 8), stores: [storeDef({ name: 'default', n: 1, r: 1, w: 1 })] }
const engine = new StorageEngine({ path: join(dir, 'node.db'), nodeId: 'n1', cache: { maxKeys: Number(values['cache-keys']) } })
try {
  await engine.putCluster(def)
  const started = performance.now()
  const cpu = process.cpuUsage()
  for (let b = 0; b * BATCH < keys; b++) {
    const items: KeySet[] = Array.from({ length: Math.min(BATCH, keys - b * BATCH) }, (_, i) => {
      const k = b * BATCH + i
      return {
        key: utf8(`key-${k}`),
        siblings: [{ dot: { actor: 'load', counter: k + 1 }, context: {}, timestamp: 1, value: new Uint8Array(valueBytes).fill(k % 251) }],
      }
    })
    await engine.mergePut('default', items)
  }
  const used = process.cpuUsage(cpu)
  const cpuS = (used.user + used.system) / 1e6
  console.log(
    `${keys} new keys of ${valueBytes} bytes, cache of ${values['cache-keys']} keys: ${((performance.now() - started) / 1000).toFixed(1)} s, ${cpuS.toFixed(1)} s CPU (${((cpuS * 1e6) / keys).toFixed(1)} µs per key); cached ${engine.cacheSize.keys} keys`,
  )
} finally {
  engine.close()
  rmSync(dir, { recursive: true, force: true })
}
