/**
 * The simulation from the command line:
 *   npm run sim -- --seeds 100000 [--start 1]   many seeds, progress and a summary
 *   npm run sim -- --seed 42 [--messages]       replay one seed with its trace
 *   add --membership to either: each seed also adds or removes a node mid-run
 *   add --clocks to either: skewed and jumping clocks, expiring writes, reaps watched
 *   add --lww (with --clocks): the lww control, whose losses are the measurement
 *   add --no-client-jumps (with --clocks): only node clocks jump backwards (--client-jumps, the default, is still taken)
 *   add --imports to either: an export mid-workload imported back once or twice, then again at the end
 * Exits 1 when any seed fails.
 */
import { parseArgs } from 'node:util'
import { type RunOptions, replayCommand, runSeed } from './run.js'
import { Summary } from './summary.js'

const PROGRESS_EVERY_MS = 3000

async function replay(seed: number, messages: boolean, options: RunOptions): Promise<number> {
  const result = await runSeed(seed, { trace: messages ? 'messages' : 'events', ...options })
  for (const line of result.trace) console.log(line)
  const summary = new Summary()
  summary.add(result)
  console.log(`\n${summary.format()}`)
  console.log(`trace digest ${result.digest}`)
  if (result.failures.length === 0) {
    console.log(`seed ${seed}: ok`)
    return 0
  }
  console.log(`seed ${seed} FAILED:\n  ${result.failures.join('\n  ')}`)
  return 1
}

async function many(start: number, count: number, options: RunOptions): Promise<number> {
  const summary = new Summary()
  const started = Date.now()
  let lastReport = started
  for (let seed = start; seed < start + count; seed++) {
    const result = await runSeed(seed, options)
    summary.add(result)
    if (result.failures.length > 0) {
      console.log(`seed ${seed} FAILED:\n  ${result.failures.join('\n  ')}\n  replay: ${replayCommand(seed, options)}`)
    }
    const now = Date.now()
    if (now - lastReport >= PROGRESS_EVERY_MS) {
      lastReport = now
      const done = seed - start + 1
      console.log(`${done}/${count} seeds, ${(done / ((now - started) / 1000)).toFixed(1)} seeds/s, ${summary.failed.length} failed`)
    }
  }
  const seconds = (Date.now() - started) / 1000
  console.log(`\n${summary.format()}`)
  console.log(`time ${seconds.toFixed(1)} s (${(count / seconds).toFixed(1)} seeds/s)`)
  for (const seed of summary.failed) console.log(`replay: ${replayCommand(seed, options)}`)
  return summary.failed.length === 0 ? 0 : 1
}

function int(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined) return fallback
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${text}`)
  return n
}

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    seeds: { type: 'string' },
    start: { type: 'string' },
    messages: { type: 'boolean', default: false },
    membership: { type: 'boolean', default: false },
    clocks: { type: 'boolean', default: false },
    lww: { type: 'boolean', default: false },
    'client-jumps': { type: 'boolean', default: false },
    'no-client-jumps': { type: 'boolean', default: false },
    imports: { type: 'boolean', default: false },
  },
})
const options: RunOptions = {
  membership: values.membership ?? false,
  clocks: values.clocks ?? false,
  clientJumps: !(values['no-client-jumps'] ?? false),
  imports: values.imports ?? false,
  ...(values.lww ? { mutant: 'lww' as const } : {}),
}
const code =
  values.seed !== undefined
    ? await replay(int(values.seed, 'seed', 0), values.messages ?? false, options)
    : await many(int(values.start, 'start', 1), int(values.seeds, 'seeds', 1000), options)
process.exit(code)
