import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const CLI = fileURLToPath(new URL('../apps/cli/dist/main.js', import.meta.url))

describe('kvorum bench: open loop and the batch ceiling', () => {
  it('issues the scheduled rate on a cluster of --nodes and reports the latency targets beside the percentiles', () => {
    const run = spawnSync(process.execPath, [CLI, 'bench', '--rate', '300', '--duration', '2', '--records', '300', '--nodes', '4', '--no-ceilings', '--json'], {
      encoding: 'utf8',
      timeout: 90_000,
    })
    expect(run.status, run.stderr).toBe(0)
    const r = JSON.parse(run.stdout) as {
      config: { rate: number; nodes: number }
      sdk: { nodes: number }
      throughput: number
      p50Ms: number
      p99Ms: number
      p999Ms: number
      openLoop: { rate: number; achievedOpsPerSec: number; late: number; targets: { p50Ms: number; p99Ms: number; p999Ms: number }; met: boolean }
    }
    expect(r.config.rate).toBe(300)
    // --nodes 4: the bench's own cluster has 4 node processes, and the SDK used them all.
    expect(r.config.nodes).toBe(4)
    expect(r.sdk.nodes).toBe(4)
    // The schedule, not the answers, sets the pace: about 300/s whatever the cluster could do closed loop.
    expect(r.openLoop.achievedOpsPerSec).toBeGreaterThan(240)
    expect(r.openLoop.achievedOpsPerSec).toBeLessThan(330)
    expect(r.throughput).toBeLessThan(330)
    expect(r.openLoop.targets).toEqual({ p50Ms: 2, p99Ms: 10, p999Ms: 15 })
    expect(r.openLoop.met).toBe(r.p50Ms < 2 && r.p99Ms < 10 && r.p999Ms < 15)
    expect(run.stderr).toMatch(/open loop at 300 ops\/s/)
  }, 120_000)

  it('measures the batch ceiling (no-op nodes behind the same SDK) in the same run and reports Kvorum as a share of it', () => {
    const run = spawnSync(process.execPath, [CLI, 'bench', '--duration', '2', '--records', '300', '--concurrency', '16', '--json'], {
      encoding: 'utf8',
      timeout: 90_000,
    })
    expect(run.status, run.stderr).toBe(0)
    const r = JSON.parse(run.stdout) as {
      throughput: number
      ceilings: { batch: { opsPerSec: number; p99Ms: number; itemsPerBatch: number; cpuUsPerOp: number | null } }
      ratios: { batch: number }
    }
    expect(r.ceilings.batch.opsPerSec).toBeGreaterThan(100)
    expect(r.ceilings.batch.itemsPerBatch).toBeGreaterThanOrEqual(1)
    expect(r.ceilings.batch.cpuUsPerOp).toBeGreaterThan(0)
    expect(r.ratios.batch).toBeCloseTo(r.throughput / r.ceilings.batch.opsPerSec, 5)
    expect(run.stderr).toMatch(/slices of the fan-out and batch ceilings/)
  }, 120_000)

  it('refuses a rate that is not a positive whole number', () => {
    const run = spawnSync(process.execPath, [CLI, 'bench', '--rate', 'fast'], { encoding: 'utf8', timeout: 30_000 })
    expect(run.status).toBe(2)
    expect(run.stderr).toMatch(/--rate/)
  })
})
