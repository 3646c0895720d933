/**
 * Writes an export file of N keys (one version each, a value of V random
 * bytes), for measuring `kvorum import` and, once imported, `kvorum export`
 * (docs/operations.md) without a client-side loader in the measurement.
 *   npx tsx --conditions=kvorum-source test/bench/export-fixture.ts --keys 1000000 --value-size 100 --out /tmp/fixture.kvx
 */
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { parseArgs } from 'node:util'
import { utf8 } from '@kvorum/core'
import { EXPORT_FORMAT, ExportWriter } from '../../apps/cli/src/export-format.js'

const { values } = parseArgs({
  options: {
    keys: { type: 'string', default: '1000000' },
    'value-size': { type: 'string', default: '100' },
    store: { type: 'string', default: 'default' },
    out: { type: 'string' },
  },
})
const keys = Number(values.keys)
const valueBytes = Number(values['value-size'])
if (!values.out || !Number.isInteger(keys) || keys < 1 || !Number.isInteger(valueBytes) || valueBytes < 0) {
  console.error('usage: export-fixture.ts --keys N --value-size V --out FILE')
  process.exit(2)
}
const out = createWriteStream(values.out)
const writer = new ExportWriter(out)
await writer.start({ format: EXPORT_FORMAT, store: values.store, conflict: 'siblings', startedAt: new Date().toISOString() })
for (let i = 0; i < keys; i++) {
  const key = utf8(`user${String(i).padStart(9, '0')}`)
  await writer.add({ key, siblings: [{ dot: { actor: 'fixture', counter: i + 1 }, context: {}, timestamp: Date.now(), value: randomBytes(valueBytes) }] })
}
await writer.finish()
await new Promise<void>((resolve) => out.end(resolve))
console.log(`${keys} keys, ${writer.bytes} bytes: ${values.out}`)
