import { type Logger, pino, stdTimeFunctions } from 'pino'
import type { LogLevel } from './options.js'
import { VERSION } from './version.js'

/**
 * The node's log: JSON lines on stdout, each with its level as a name
 * (`"level":"warn"`, not pino's number, so a log pipeline needs no mapping),
 * an ISO time, the node id and the build version.
 */
export function nodeLogger(level: LogLevel, nodeId: string, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { pid: process.pid, node: nodeId, version: VERSION },
    timestamp: stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }
  // Written synchronously: pino's buffered stdout is flushed at exit by a loop that retries a
  // write to a closed pipe forever (`kvorum-node ... | head` hung on SIGTERM). A sync destination
  // has no exit flush, and stops writing at the first EPIPE. The node logs little (an access line
  // per request only at debug), so the syscall per line costs nothing that matters.
  return pino(options, destination ?? pino.destination({ dest: 1, sync: true }))
}
