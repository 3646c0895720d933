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
  return pino(options, destination ?? stdoutLog())
}

/** Most log bytes waiting for a slow reader; past it lines are dropped, never the node's memory. */
const MAX_LOG_BUFFER = 16 * 1024 * 1024

/**
 * Stdout, written in the background with a bounded buffer: a reader that
 * stops reading (a paused pager, a stuck log shipper) does not block the
 * node's requests (a synchronous write to a full pipe did), and past the
 * buffer lines are dropped rather than held. pino's synchronous flush at
 * exit, which retries a write to a closed pipe for ever (`kvorum-node ... |
 * head` hung on SIGTERM), is turned off: the stop path flushes in the
 * background first, within its deadline. (A reader that never reads again
 * still holds the exit: the background write waits in a thread exit joins.)
 */
function stdoutLog(): pino.DestinationStream {
  const out = pino.destination({ dest: 1, sync: false, maxLength: MAX_LOG_BUFFER })
  out.flushSync = () => undefined
  stdout = out
  return out
}

let stdout: ReturnType<typeof pino.destination> | null = null

/**
 * Call `done` once the line just logged is written (the background writer
 * empties its buffer and says so), or at once when the log is not stdout's.
 * Call it right after a line: a write is then in flight, so its end is told.
 */
export function afterLogWritten(done: () => void): void {
  if (!stdout) {
    done()
    return
  }
  stdout.once('drain', done)
  stdout.once('error', done)
}
