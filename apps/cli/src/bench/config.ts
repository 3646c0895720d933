import type { WorkloadName } from './workload.js'

/** One benchmark run's settings, as parsed from the command line and echoed in the report. */
export interface BenchConfig {
  workload: WorkloadName
  concurrency: number
  seconds: number
  records: number
  valueBytes: number
  durability: 'normal' | 'full'
  conflict: 'siblings' | 'lww'
  /** Open loop at this many operations a second; null: closed loop at `concurrency`. */
  rate: number | null
  /** Node processes of the bench's own cluster. */
  nodes: number
}
