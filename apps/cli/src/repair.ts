import { type RepairReport, connect } from '@kvorum/client'
import { intFlag, parse, seedsFlag, tokenFlag } from './args.js'
import { Progress } from './progress.js'

export const REPAIR_HELP = `kvorum repair --seeds URL [--store S] [--partition P] [--max-keys-per-second N] [--token T] [--json]
kvorum repair --daemon --seeds URL [--pause-s 60] [--token T]
  One Merkle anti-entropy pass with a progress bar and a summary; --daemon also delivers hints
  and repeats the pass with a pause in between, until Ctrl-C.`

function summary(r: RepairReport): string {
  return (
    `${r.partitionsDone}/${r.partitionsTotal} partitions (${r.partitionsDiffering} differed, ${r.partitionsSkipped} skipped: too few replicas up), ` +
    `${r.keysCompared} keys compared, ${r.keysRepaired} repaired (${r.replicaWrites} replica writes), ` +
    `${r.tombstonesReaped} tombstones reaped, ${(r.bytesExchanged / 1024).toFixed(1)} KiB exchanged in ${(r.durationMs / 1000).toFixed(1)} s`
  )
}

export async function repair(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    seeds: { type: 'string' },
    token: { type: 'string' },
    store: { type: 'string' },
    partition: { type: 'string' },
    'max-keys-per-second': { type: 'string' },
    daemon: { type: 'boolean', default: false },
    'pause-s': { type: 'string' },
    json: { type: 'boolean', default: false },
  })
  const kv = await connect({ seeds: seedsFlag(values.seeds), ...tokenFlag(values.token) })
  const partitions = values.partition === undefined ? undefined : [intFlag(values.partition, 'partition', 0, kv.cluster.partitions - 1, 0)]
  const options = {
    ...(values.store ? { store: values.store } : {}),
    ...(partitions ? { partitions } : {}),
    maxKeysPerSecond: intFlag(values['max-keys-per-second'], 'max-keys-per-second', 1, 1_000_000, 10_000),
  }
  if (values.store) kv.store(values.store)
  try {
    if (!values.daemon) {
      const bar = new Progress('repair')
      const report = await kv.repair({
        ...options,
        onProgress: (r) => bar.update(r.partitionsDone, r.partitionsTotal, `${r.keysRepaired} keys repaired, ${(r.bytesExchanged / 1024).toFixed(1)} KiB`),
      })
      bar.done()
      console.log(values.json ? JSON.stringify(report) : summary(report))
      return report.partitionsSkipped > 0 ? 1 : 0
    }
    const pauseMs = intFlag(values['pause-s'], 'pause-s', 0, 86_400, 60) * 1000
    kv.startHandoff()
    let stop = false
    const halt = () => {
      stop = true
    }
    process.on('SIGINT', halt)
    process.on('SIGTERM', halt)
    console.log(`repair daemon: delivering hints continuously, a repair pass every ${pauseMs / 1000} s; Ctrl-C stops`)
    while (!stop) {
      const report = await kv.repair(options)
      console.log(`${new Date().toISOString()} ${summary(report)}`)
      for (let waited = 0; waited < pauseMs && !stop; waited += 200) await new Promise((r) => setTimeout(r, 200))
    }
    return 0
  } finally {
    await kv.close()
  }
}
