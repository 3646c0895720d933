import { spawnSync } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterEach, expect, it } from 'vitest'
import { type ProcessCluster, startCluster } from './support/process-cluster.js'

const root = fileURLToPath(new URL('..', import.meta.url))
let cluster: ProcessCluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

it('the README shopping-cart example runs against a real cluster', async () => {
  const readme = readFileSync(`${root}README.md`, 'utf8')
  const example = /```ts\n([\s\S]*?)```/.exec(readme)?.[1]
  expect(example).toContain("from '@kvorum/client'")
  cluster = await startCluster({ stores: [{ name: 'default' }] })
  // The example talks to `npm start`'s seed; point it at this test's cluster and check what it leaves behind.
  const code = `${(example as string).replace('http://127.0.0.1:7070', cluster.seeds[0] as string)}
const check = await connect({ seeds: [${JSON.stringify(cluster.seeds[0])}], token: process.env.KVORUM_TOKEN })
const after = await check.store('default').get('alice', { r: 3 })
if (after.found) throw new Error('the cart should be deleted at the end of the example')
await check.close()
console.log('example ok')
`
  const file = `${root}test/.readme-example.mts`
  writeFileSync(file, code)
  try {
    const run = spawnSync(process.execPath, ['--import', 'tsx', file], {
      cwd: root,
      env: { ...process.env, KVORUM_TOKEN: cluster.token },
      encoding: 'utf8',
      timeout: 30_000,
    })
    expect(run.stderr).toBe('')
    expect(run.stdout.trim()).toBe('example ok')
    expect(run.status).toBe(0)
  } finally {
    rmSync(file, { force: true })
  }
})
