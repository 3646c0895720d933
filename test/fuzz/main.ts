import { randomInt } from 'node:crypto'
import { parseArgs } from 'node:util'
import { type Summary, runFuzz } from './run.js'

const USAGE = `npm run fuzz -- [--requests N] [--seed S] [--concurrency C] [--batch B]

  Protocol fuzzing of one kvorum-node process on 127.0.0.1.
  --requests N     fuzzed requests to send (default 100000)
  --seed S         seed of the request stream (default: random, printed); a seed names
                   the same requests every time, except bytes drawn from the node's
                   random actor id (its incarnation)
  --concurrency C  connections in use at once (default 8; 1 makes the node's answers,
                   which depend on arrival order, most repeatable)
  --batch B        requests between data checks (default 32)
  --oversized K    bodies over 64 MiB to send (default 2)
  --slowloris R    slowloris rounds (default 1)`

function table(counts: Record<string, number>): string {
  return Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `    ${k.padEnd(28)} ${n}`)
    .join('\n')
}

function report(s: Summary): string {
  const rps = s.requests / (s.elapsedMs / 1000)
  return [
    `seed ${s.seed}: ${s.requests} requests in ${(s.elapsedMs / 1000).toFixed(1)} s (${rps.toFixed(0)} requests/s)`,
    `  batches: ${s.batches}, data-checked: ${s.checkedBatches}`,
    '  by status:',
    table(s.byStatus),
    '  by error code:',
    table(s.byCode),
    '  by request class:',
    table(s.byClass),
    `  violations: ${s.violations.length}`,
    ...s.violations.map((v) => `  - #${v.index} ${v.problem}\n      ${v.request}`),
  ].join('\n')
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: '100000' },
      seed: { type: 'string' },
      concurrency: { type: 'string', default: '8' },
      batch: { type: 'string', default: '32' },
      oversized: { type: 'string', default: '2' },
      slowloris: { type: 'string', default: '1' },
      help: { type: 'boolean', default: false },
    },
  })
  if (values.help) {
    console.log(USAGE)
    return 0
  }
  const num = (name: string, text: string | undefined, min: number): number => {
    const n = Number(text)
    if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${text}\n\n${USAGE}`)
    return n
  }
  const seed = values.seed === undefined ? randomInt(2 ** 32) : num('seed', values.seed, 0)
  const requests = num('requests', values.requests, 1)
  console.log(`fuzzing: seed ${seed}, ${requests} requests (replay: npm run fuzz -- --seed ${seed} --requests ${requests})`)
  const summary = await runFuzz({
    seed,
    requests,
    concurrency: num('concurrency', values.concurrency, 1),
    batchSize: num('batch', values.batch, 1),
    oversized: num('oversized', values.oversized, 0),
    slowlorisRounds: num('slowloris', values.slowloris, 0),
    onProgress: (s) => {
      const secs = (performance.now() - startedAt) / 1000
      console.log(`  ${s.requests}/${requests} requests, ${(s.requests / secs).toFixed(0)}/s, ${s.violations.length} violations`)
    },
  })
  console.log(report(summary))
  if (summary.nodeLog) console.log(`\nend of the node's log:\n${summary.nodeLog}`)
  if (summary.violations.length > 0) console.log(`\nFAILED: replay with npm run fuzz -- --seed ${seed} --requests ${requests}`)
  return summary.violations.length > 0 ? 1 : 0
}

const startedAt = performance.now()
main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e)
    process.exit(2)
  },
)
