import { afterAll, describe, expect, it } from 'vitest'
import { detectorOf, handoffWorker } from '@kvorum/client/testing'
import { memoryCluster } from './support/memory-cluster.js'
import type { Mutant } from './sim/config.js'
import { type RunOptions, replayCommand, runSeed } from './sim/run.js'
import { Summary } from './sim/summary.js'

/**
 * The seeded simulation (issue 5): SDK clients against storage engines over a
 * faulty in-memory network, on virtual time. Each seed: concurrent OR-set
 * adds, deletes and re-creates under crashes, pauses, cuts, drops,
 * duplicates and reordering; then heal, hint handoff, one repair pass, and
 * the checks. A failing seed replays with `npm run sim -- --seed N`.
 * The seed chunks run the import race too (issue 15): an export taken
 * mid-workload is imported back once or twice while the workers go on, and
 * imported again at the end (`--imports` replays them).
 */

const SEEDS = 1000
const MEMBERSHIP_SEEDS = 1000
/** Seeds under the clock nemesis (skewed, jumping clocks; expiring writes; reaps watched). */
const CLOCK_SEEDS = 30
const CHUNK = 100
/** Every chunk below runs the import race beside its workload. */
const IMPORTS: RunOptions = { imports: true }
const summary = new Summary()

afterAll(() => {
  console.log(`simulation, seeds 1..${SEEDS} (and membership, clock seeds):\n${summary.format()}`)
})

async function failuresOf(seeds: Iterable<number>, options: RunOptions = {}): Promise<string[]> {
  const out: string[] = []
  for (const seed of seeds) {
    const result = await runSeed(seed, options)
    summary.add(result)
    if (result.failures.length > 0) out.push(`seed ${seed}: ${result.failures.join('; ')}\n  replay: ${replayCommand(seed, options)}`)
  }
  return out
}

function range(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i)
}

describe('simulation', () => {
  for (let start = 1; start <= SEEDS; start += CHUNK) {
    it(`seeds ${start}..${start + CHUNK - 1}: no acknowledged add lost, no deleted version back (imports included), replicas identical, importing again changes nothing`, async () => {
      expect(await failuresOf(range(start, CHUNK), IMPORTS)).toEqual([])
    }, 120_000)
  }

  // Membership changes beside the workload and its faults (add or remove a node, the driver
  // stopped once and resumed by a fresh one); the seeds above run without, as recorded.
  for (let start = 1; start <= MEMBERSHIP_SEEDS; start += CHUNK) {
    it(`membership seeds ${start}..${start + CHUNK - 1}: a node added or removed mid-workload, nothing lost, the plan's layout at the end`, async () => {
      expect(await failuresOf(range(start, CHUNK), { ...IMPORTS, membership: true })).toEqual([])
    }, 120_000)
  }

  // Skewed clocks (minutes either way, node clocks stepping back) and expiring overwrites: nothing
  // lost, no predecessor of an expired value back, no tombstone reaped before its grace on true time.
  it(`clock seeds 1..${CLOCK_SEEDS}: skewed and jumping clocks, expiring writes, nothing lost or back, no early reap`, async () => {
    expect(await failuresOf(range(1, CLOCK_SEEDS), { ...IMPORTS, clocks: true })).toEqual([])
  }, 120_000)

  // Regression: the reaper judged a tombstone's grace on the repairer's clock against the node's
  // tombstone time, so a repairer whose clock ran ahead reaped tombstones a few hundred ms old.
  // The node now counts the grace on its own clock.
  it('clock seed 120: a repairer whose clock runs ahead does not reap young tombstones', async () => {
    const result = await runSeed(120, { clocks: true })
    expect(result.failures).toEqual([])
    expect(result.healing.finalTombstonesReaped).toBeGreaterThan(0)
  })

  // Regression: SDK deadlines, backoffs and rate limits ran on the wall clock. c2's clock steps back
  // 125 s at 166 ms; its handoff worker's token bucket counted that as debt and slept it off, and the
  // run stalled past its phase budget. They run on monotonic time now (client jumps are on by default).
  it('clock seed 13: a client whose wall clock steps back two minutes mid-run still finishes on time', async () => {
    const result = await runSeed(13, { clocks: true, trace: 'events' })
    expect(result.failures).toEqual([])
    expect(result.trace.some((line) => /clock of c2 jumps back 125494 ms/.test(line))).toBe(true)
  })

  // Regression: a hint kept for a node that had left the key's partition was re-targeted to the
  // current replicas after the key's tombstone was reaped (the reaper only looked at hints for
  // the current replicas), and the deleted value came back. Reaps now wait for every hint.
  it("membership seed 845: a hint for a node that left a partition cannot outlive its key's tombstone", async () => {
    const result = await runSeed(845, { membership: true })
    expect(result.failures).toEqual([])
    expect(result.healing.finalTombstonesReaped).toBeGreaterThan(0)
  })

  it('replays a seed exactly: the same trace, message by message', async () => {
    // Seed 77 crashes, pauses and cuts nodes and drops, duplicates and delays messages.
    const first = await runSeed(77, { trace: 'messages' })
    const second = await runSeed(77, { trace: 'messages' })
    expect(first.faults.crashes + first.faults.pauses).toBeGreaterThan(0)
    expect(first.faults.droppedRequests + first.faults.droppedAnswers + first.faults.duplicated).toBeGreaterThan(0)
    expect(second.trace).toEqual(first.trace)
    expect(second.digest).toBe(first.digest)
    expect(first.trace.length).toBeGreaterThan(100)
  })
})

describe('the checks catch planted bugs', () => {
  const planted: [Mutant, string, RunOptions][] = [
    ['lww', 'lost acknowledged adds', {}],
    ['blind-delete', 'resurrected', {}],
    ['blind-expire', 'resurrected', { clocks: true }],
    ['no-repair', 'divergent replicas', {}],
    // An import that writes each exported value over what the replicas hold, instead of merging sets.
    ['overwrite-import', 'lost acknowledged adds', IMPORTS],
    ['overwrite-import', 'resurrected', IMPORTS],
    ['overwrite-import', 'import changed replicas', IMPORTS],
    // One write under two dots (a coordinate delivered twice): a delete that read the first leaves the second.
    ['copy-coordinates', 'resurrected', {}],
  ]
  for (const [mutant, finding, options] of planted) {
    it(`${mutant}: some seeds fail with "${finding}"`, async () => {
      const found: string[] = []
      // Up to 30 seeds, stopping at the first that finds it.
      for (const seed of range(1, 30)) {
        const result = await runSeed(seed, { ...options, mutant })
        found.push(...result.failures.map((f) => f.split(':')[0] as string))
        if (found.includes(finding)) break
      }
      expect(found).toContain(finding)
    }, 60_000)
  }
})

describe('regressions found by the simulation', () => {
  it('seed 307: a copy of a coordinate request, delivered after a delete, wrote the deleted document again under a new dot', async () => {
    // Found once the checker judged resurrection by value as well as by dot. The network copied a
    // store batch that coordinated c2w1.2; the copy landed 350 ms later, after the delete, and n2
    // coordinated it again. HTTP delivers a POST at most once, so the network no longer copies a
    // coordinating batch; the copy-coordinates mutant (above) keeps the check proven.
    expect((await runSeed(307, IMPORTS)).failures).toEqual([])
    expect((await runSeed(307, { mutant: 'copy-coordinates' })).failures).toContainEqual(expect.stringMatching(/^resurrected: doc-0 c2w1\.2 again as /))
  })

  it('seed 2229: a repair pass that outlasted the tombstone grace reaped under hints stored since it began, and the key came back', async () => {
    // c2's pass read the hint backlog at 70 ms, waited on a 5 s request timeout, then at 5 s reaped
    // doc-0's tombstone; a hint stored at 400 ms with the versions it covered was delivered at the
    // end and brought them back. Fixed in AntiEntropy.reap: hints are read again before reaping.
    const result = await runSeed(2229)
    expect(result.failures).toEqual([])
  })

  it('a tombstone is not reaped while a hint stored during the pass may still hold what it deleted', async () => {
    const cluster = await memoryCluster({ stores: [{ name: 'default', tombstoneGraceMs: 50 }] })
    try {
      const repairer = await cluster.client()
      const writer = await cluster.client()
      // Hold the pass after it read the (empty) hint backlog, until the grace period is over.
      let release = () => {}
      const gate = new Promise<void>((resolve) => (release = resolve))
      let held = false
      repairer.transport.intercept = async (_node, op, _opts, call) => {
        if (op === 'merkleRoots' && !held) {
          held = true
          await gate
        }
        return call()
      }
      const pass = repairer.kv.repair()
      const s = writer.kv.store<string>('default', { codec: 'utf8' })
      // v1 misses n3 and waits in a hint; the delete reaches all three replicas.
      writer.transport.setReachable('n3', false)
      await s.put('cart', 'v1')
      writer.transport.setReachable('n3', true)
      detectorOf(writer.kv).success('n3')
      await s.delete('cart', { r: 3 })
      await new Promise((resolve) => setTimeout(resolve, 80))
      release()
      expect((await pass).tombstonesReaped).toBe(0)
      expect((await handoffWorker(writer.kv).sweep()).delivered).toBe(1)
      await writer.kv.repair()
      expect((await s.get('cart', { r: 3 })).found).toBe(false)
    } finally {
      await cluster.close()
    }
  })
})
