import { readFileSync } from 'node:fs'

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const TICKS = 100

/**
 * CPU seconds (user + system) a process has used so far, from
 * /proc/<pid>/stat; null where /proc is not there. CPU per operation does not
 * depend on what else the machine is doing, unlike throughput.
 */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / TICKS
  } catch {
    return null
  }
}

/** CPU seconds of this process and of the given others, summed. */
export function totalCpu(pids: readonly number[]): number | null {
  const self = process.cpuUsage()
  let total = (self.user + self.system) / 1e6
  for (const pid of pids) {
    const s = cpuSeconds(pid)
    if (s === null) return null
    total += s
  }
  return total
}
