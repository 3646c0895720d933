import { it } from 'vitest'
import { handoffWorker } from '@kvorum/client/testing'
import { startCluster } from './support/process-cluster.js'
it('probe', async () => {
  for (let i = 0; i < 4; i++) {
    const c = await startCluster({ stores: [{ name: 'default', tombstoneGraceMs: 0 }] } )
    const kv = await c.connect()
    const s = kv.store<string>('default', { codec: 'utf8' })
    await s.put('a', '1')
    await s.delete('a')
    await new Promise((r) => setTimeout(r, 300))
    await c.kill('n3')
    await s.put('other', 'x')
    await new Promise((r) => setTimeout(r, 300))
    await c.start('n3')
    const r1 = await kv.repair()
    const sw = await handoffWorker(kv).sweep()
    const r2 = await kv.repair()
    console.log('R', JSON.stringify({ r1: r1.tombstonesReaped, sw, r2 }), JSON.stringify(kv.nodes()))
    await kv.close()
    await c.close()
  }
}, 120_000)
