import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const CLI = fileURLToPath(new URL('../apps/cli/dist/main.js', import.meta.url))
const hasEtcd = spawnSync('etcd', ['--version']).status === 0

describe('kvorum bench --against etcd', () => {
  it('says how to install etcd and exits 2 when there is none on PATH', () => {
    // An empty directory as PATH: no etcd there (node itself runs by its full path).
    const empty = mkdtempSync(join(tmpdir(), 'kvorum-no-etcd-'))
    const run = spawnSync(process.execPath, [CLI, 'bench', '--against', 'etcd', '--duration', '1', '--no-ceilings'], {
      encoding: 'utf8',
      env: { PATH: empty },
      timeout: 30_000,
    })
    rmSync(empty, { recursive: true, force: true })
    expect(run.status).toBe(2)
    expect(run.stderr).toMatch(/--against etcd needs the etcd binary on PATH: install it: apt-get install etcd-server/)
  })

  // .ci/run installs Debian's etcd-server when it is missing, so CI always runs this; a machine
  // without etcd skips it (the test above still runs), and the README says how to install it.
  it.skipIf(!hasEtcd)(
    'runs the same mix against a 3-member etcd in slices between Kvorum, and reports both and the ratios',
    () => {
      const run = spawnSync(
        process.execPath,
        [CLI, 'bench', '--against', 'etcd', '--duration', '2', '--records', '300', '--concurrency', '16', '--no-ceilings', '--json'],
        {
          encoding: 'utf8',
          timeout: 90_000,
        },
      )
      expect(run.status, run.stderr).toBe(0)
      const r = JSON.parse(run.stdout) as {
        throughput: number
        peer: { name: string; opsPerSec: number; errors: number; p99Ms: number; cpuUsPerOp: number | null; durability: string; ratios: { throughput: number } }
      }
      expect(r.peer.name).toBe('etcd')
      expect(r.peer.durability).toBe('--unsafe-no-fsync')
      expect(r.peer.errors).toBe(0)
      expect(r.peer.opsPerSec).toBeGreaterThan(50)
      expect(r.peer.p99Ms).toBeGreaterThan(0)
      expect(r.peer.cpuUsPerOp).toBeGreaterThan(0)
      expect(r.peer.ratios.throughput).toBeCloseTo(r.throughput / r.peer.opsPerSec, 5)
      expect(run.stderr).toMatch(/in 1 slices after as many slices of etcd/)
    },
    120_000,
  )
})
